package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/echlab/echlab/lab/conformance"
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

// TestConformanceStrict: a failed SHOULD cell (public-name-ip/go) leaves
// the exit status 0 with --strict as without it; the capture of each cell
// is written under --out/pcap.
func TestConformanceStrict(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "res")
	for _, args := range [][]string{{"--strict"}, nil} {
		r := runCLI(t, dir, time.Minute, append([]string{"conformance", "--case", "public-name-ip", "--out", out}, args...)...)
		if r.code != 0 || !strings.Contains(r.stdout, "1 failed cells: public-name-ip/go") {
			t.Fatalf("%q: exit %d, want 0 (a SHOULD failure)\nstdout:\n%s\nstderr:\n%s", args, r.code, r.stdout, r.stderr)
		}
	}
	for _, c := range []string{"echlab", "go"} {
		if _, err := os.Stat(filepath.Join(out, "pcap", "public-name-ip-"+c+".pcapng")); err != nil {
			t.Error(err)
		}
	}
}

// TestConformanceStrictError: --strict's verdict names the failed cells of
// MUST cases and only those; main maps it to exit status 1.
func TestConformanceStrictError(t *testing.T) {
	row := func(name string, level conformance.Level, grades ...conformance.Grade) conformance.CaseResult {
		cr := conformance.CaseResult{Case: conformance.Case{Name: name, Expect: conformance.Expect{Level: level}}}
		for i, g := range grades {
			cr.Cells = append(cr.Cells, conformance.Cell{Client: conformance.Clients()[i], Grade: g})
		}
		return cr
	}
	rep := &conformance.Report{Clients: conformance.Clients(), Cases: []conformance.CaseResult{
		row("a", conformance.MUST, conformance.Pass, conformance.NA),
		row("b", conformance.SHOULD, conformance.Fail, conformance.Fail),
		row("c", conformance.MAY, conformance.Pass, conformance.Fail),
	}}
	if err := strictError(rep); err != nil || exitCode(err) != 0 {
		t.Fatalf("no MUST failure: %v", err)
	}
	rep.Cases = append(rep.Cases, row("d", conformance.MUST, conformance.Pass, conformance.Fail), row("e", conformance.MUST, conformance.Fail, conformance.Pass))
	err := strictError(rep)
	if err == nil || !strings.Contains(err.Error(), "2 failed cells at level MUST: d/go, e/echlab") || exitCode(err) != 1 {
		t.Fatalf("MUST failures: %v (exit %d)", err, exitCode(err))
	}
}
