package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCompareESNIKeys runs the esni scenario, then reads its capture with
// echlab compare: without keys the ESNI flow shows no name but its ALPN;
// with --esni-keys the name is decrypted.
func TestCompareESNIKeys(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	r := runCLI(t, dir, 2*time.Minute, "run", "--out", out, "--scenarios", "esni", "--transports", "doh", "--capture", "synth", "--quiet")
	if r.code != 0 {
		t.Fatalf("echlab run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	capture := filepath.Join(out, "capture.pcapng")
	esniFlow := func(args ...string) map[string]any {
		t.Helper()
		r := runCLI(t, dir, time.Minute, append([]string{"compare", capture, "--json", "-"}, args...)...)
		if r.code != 0 {
			t.Fatalf("echlab compare: exit %d\n%s", r.code, r.stderr)
		}
		for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			var f map[string]any
			if err := json.Unmarshal([]byte(line), &f); err != nil {
				t.Fatalf("compare JSON %q: %v", line, err)
			}
			if f["esni"] == true {
				return f
			}
		}
		t.Fatalf("no ESNI flow in\n%s", r.stdout)
		return nil
	}
	f := esniFlow()
	if f["ech"] != "esni" || f["sni"] != nil || f["inner_sni"] != nil || f["esni_enc_len"] != float64(292) {
		t.Errorf("without keys: %v", f)
	}
	if alpn, _ := f["alpn"].([]any); len(alpn) != 1 || alpn[0] != "h2" {
		t.Errorf("ALPN %v, want h2 in the clear", f["alpn"])
	}
	f = esniFlow("--esni-keys", filepath.Join(out, "keys", "esni"))
	if f["inner_sni"] != "secret.lab.test" || f["esni_decrypted"] != true {
		t.Errorf("with --esni-keys: %v", f)
	}
	r = runCLI(t, dir, time.Minute, "compare", capture, "--esni-keys", filepath.Join(dir, "nowhere"))
	if r.code == 0 {
		t.Errorf("a missing ESNI key directory was accepted")
	}
}
