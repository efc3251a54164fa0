package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestConformanceCommand runs two cases with both clients: the table on
// stdout, the failed cell named, both files written.
func TestConformanceCommand(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "res")
	r := runCLI(t, dir, time.Minute, "conformance", "--case", "baseline,public-name-ip", "--out", out)
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"case            level   server  echlab  go", "baseline        MUST    good    pass    pass",
		"1 failed cells: public-name-ip/go"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
		}
	}
	b, err := os.ReadFile(filepath.Join(out, "conformance.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Cases []struct{ Cells []struct{ Grade string } }
	}
	if err := json.Unmarshal(b, &rep); err != nil || len(rep.Cases) != 2 {
		t.Fatalf("conformance.json: %v, %d cases", err, len(rep.Cases))
	}
	if _, err := os.Stat(filepath.Join(out, "conformance.md")); err != nil {
		t.Fatal(err)
	}
	r = runCLI(t, dir, time.Minute, "conformance", "--client", "echlab", "--case", "ttl-zero", "--out", out)
	if r.code != 0 || !strings.Contains(r.stdout, "case      level  server  echlab\nttl-zero  MUST   good    pass") {
		t.Fatalf("--client echlab: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestConformanceBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--client", "lynx"}, `--client "lynx": want echlab, go or all`},
		{[]string{"--case", "baseline,nope"}, "unknown case nope"},
		{[]string{"--bogus"}, "flag provided but not defined"},
		{[]string{"extra"}, "Usage: echlab conformance"},
	} {
		r := runCLI(t, "", time.Minute, append([]string{"conformance"}, tc.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
}
