package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// TestTablesWide runs the lab, then compare on its capture, each with and
// without --wide: the default tables fit 120 columns and carry the
// legend; --wide prints every column.
func TestTablesWide(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	args := []string{"run", "--out", out, "--scenarios", "baseline,ech-shared", "--transports", "doh,do53", "--capture", "synth", "--quiet"}
	narrow := runCLI(t, dir, 2*time.Minute, args...)
	wide := runCLI(t, dir, 2*time.Minute, append(args, "--wide")...)
	cmp := []string{"compare", "--keys", filepath.Join(out, "keys"), filepath.Join(out, "capture.pcapng")}
	cmpNarrow := runCLI(t, dir, time.Minute, cmp...)
	cmpWide := runCLI(t, dir, time.Minute, append(cmp, "--wide")...)
	for name, r := range map[string]cliResult{"run": narrow, "run --wide": wide, "compare": cmpNarrow, "compare --wide": cmpWide} {
		if r.code != 0 {
			t.Fatalf("%s: exit %d\n%s%s", name, r.code, r.stdout, r.stderr)
		}
	}
	for name, c := range map[string]struct {
		narrow, wide string
		wideCols     []string
	}{
		"run":     {narrow.stdout, wide.stdout, []string{"OBSERVER SAW SNI", "NAME IN DNS?", "HANDSHAKE MS"}},
		"compare": {cmpNarrow.stdout, cmpWide.stdout, []string{"CLIENT", "kdf=0x0001", "TLS_AES_128_GCM_SHA256"}},
	} {
		if n := widestLine(c.narrow); n > 120 || !strings.Contains(c.narrow, "ECH: ") || !strings.Contains(c.narrow, "ACC: ") {
			t.Errorf("echlab %s: %d columns wide (want ≤ 120) or no legend:\n%s", name, n, c.narrow)
		}
		if widestLine(c.wide) <= 120 {
			t.Errorf("echlab %s --wide: %d columns", name, widestLine(c.wide))
		}
		for _, col := range c.wideCols {
			if !strings.Contains(c.wide, col) || strings.Contains(c.narrow, col) {
				t.Errorf("echlab %s: %q should be in the --wide table only", name, col)
			}
		}
	}
}

func widestLine(s string) int {
	n := 0
	for _, l := range strings.Split(s, "\n") {
		n = max(n, utf8.RuneCountInString(l))
	}
	return n
}
