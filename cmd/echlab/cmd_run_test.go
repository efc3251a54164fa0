package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/echlab/echlab/lab"
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

// TestRunAdversary runs a small adversary grid from the command line: the
// table on stdout, the grid files in --out.
func TestRunAdversary(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	r := runCLI(t, dir, 2*time.Minute, "run", "--adversary", "block-ech rst,strip-ech", "--grid-rows", "echlab/do53,echlab-fallback/do53",
		"--out", out, "--quiet")
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	// Control, block-ech, strip-ech for the two rows: E E / F F / F C*.
	var lines []string
	for _, l := range strings.Split(r.stdout, "\n") {
		lines = append(lines, strings.Join(strings.Fields(l), " "))
	}
	for _, want := range []string{"adversary \\ client 1 2", "none E E", "block-ech rst F F", "strip-ech F C*",
		"clients: 1=echlab/do53 2=echlab-fallback/do53"} {
		if !slices.Contains(lines, want) {
			t.Errorf("stdout lacks the line %q:\n%s", want, r.stdout)
		}
	}
	if !strings.Contains(r.stdout, "(0 cells)") {
		t.Errorf("stdout does not say 0 cells deviate:\n%s", r.stdout)
	}
	for _, f := range []string{"grid.md", "grid.json", "adversary.jsonl", "capture.pcapng"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// TestRunAdversaryBadFlags: a bad policy, an unknown row, and rows without
// --adversary are usage errors (exit 2) that say what is wrong.
func TestRunAdversaryBadFlags(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--adversary", "block-sni"}, "echlab run: --adversary: "},
		{[]string{"--adversary", "block-ech,nonsense-policy"}, "nonsense-policy"},
		{[]string{"--adversary", "poison public.lab.test not-an-ip"}, "not-an-ip"},
		{[]string{"--adversary", "none", "--grid-rows", "no-such-row"}, `echlab run: --grid-rows: lab: unknown grid row "no-such-row" (rows: echlab/do53,`},
		{[]string{"--grid-rows", "echlab/doh"}, "echlab run: --grid-rows needs --adversary"},
	} {
		r := runCLI(t, dir, time.Minute, append([]string{"run", "--out", filepath.Join(dir, "out"), "--quiet"}, tc.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q, want 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
}

// TestRunCensorFamily: --scenarios censor is the adversary grid with every
// policy column (here for one client row), and cannot be mixed.
func TestRunCensorFamily(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	r := runCLI(t, dir, 2*time.Minute, "run", "--scenarios", "censor", "--grid-rows", "echlab/doh", "--out", out, "--quiet")
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	b, err := os.ReadFile(filepath.Join(out, "grid.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		Grid struct {
			Columns []string `json:"columns"`
		} `json:"grid"`
	}
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	if want := 1 + len(lab.GridColumns); len(g.Grid.Columns) != want {
		t.Errorf("%d columns %v, want the control and every default column (%d)", len(g.Grid.Columns), g.Grid.Columns, want)
	}
	r = runCLI(t, dir, time.Minute, "run", "--scenarios", "censor,baseline", "--out", out, "--quiet")
	if r.code != 2 || !strings.Contains(r.stderr, "--scenarios censor runs the adversary grid") {
		t.Errorf("censor mixed with a scenario: exit %d, stderr %q", r.code, r.stderr)
	}
}
