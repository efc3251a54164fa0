package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRunCommand runs a small matrix of the embedded lab end to end and
// checks the report and summary it writes.
func TestRunCommand(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	r := runCLI(t, dir, 2*time.Minute, "run", "--out", out, "--scenarios", "baseline,ech-shared",
		"--transports", "doh", "--capture", "synth", "--quiet")
	if r.code != 0 {
		t.Fatalf("echlab run: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	report, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# echlab run", "baseline/doh", "ech-shared/doh", "## echlab compare"} {
		if !strings.Contains(string(report), want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	raw, err := os.ReadFile(filepath.Join(out, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var sum struct {
		Schema  int    `json:"schema"`
		Capture string `json:"capture"`
		Rows    []struct {
			Scenario string `json:"scenario"`
			Cases    int    `json:"cases"`
			OK       int    `json:"ok"`
		} `json:"rows"`
	}
	if err := json.Unmarshal(raw, &sum); err != nil {
		t.Fatalf("summary.json: %v", err)
	}
	if sum.Schema != 1 || sum.Capture != "synth" || len(sum.Rows) != 2 {
		t.Errorf("summary.json: %s", raw)
	}
	for _, row := range sum.Rows {
		if row.Scenario != "baseline" && row.Scenario != "ech-shared" || row.Cases != 1 || row.OK != 1 {
			t.Errorf("summary.json row %+v", row)
		}
	}
}

// TestRunCommandBadScenario checks that an unknown scenario is refused as
// a usage error before anything starts.
func TestRunCommandBadScenario(t *testing.T) {
	dir := t.TempDir()
	r := runCLI(t, dir, time.Minute, "run", "--out", filepath.Join(dir, "out"), "--scenarios", "no-such", "--capture", "synth")
	if r.code != 2 || !strings.Contains(r.stderr, `unknown scenario "no-such"`) {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestRunCommandBadTransport: an unknown DNS transport is named as such,
// with the valid ones, in one line and exit 2.
func TestRunCommandBadTransport(t *testing.T) {
	dir := t.TempDir()
	r := runCLI(t, dir, time.Minute, "run", "--out", filepath.Join(dir, "out"), "--transports", "doh,foo", "--capture", "synth")
	want := `echlab run: --transports: unknown transport "foo" (valid: do53,dot,doh,doh3,doq or all)`
	if r.code != 2 || strings.TrimSpace(r.stderr) != want {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
}
