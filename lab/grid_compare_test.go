package lab

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/echlab/echlab/lab/observe"
)

// readFlows reads a run's flows.jsonl.
func readFlows(t *testing.T, dir string) []observe.Flow {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, FileFlowsJSONL))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var flows []observe.Flow
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var fl observe.Flow
		if err := json.Unmarshal(sc.Bytes(), &fl); err != nil {
			t.Fatalf("flows.jsonl: %v", err)
		}
		flows = append(flows, fl)
	}
	return flows
}

// TestGridCompareMarksFlows runs a small grid and reads the flows RunGrid
// writes from its capture and adversary.jsonl: the ECH connections reset
// by 'block-ech rst' are marked rst with that policy, the Do53 HTTPS
// answer strip-ech rewrote is marked rewrite, every other flow is a pass
// of no policy; each is marked with its cell's column and row, every
// decision joined a flow, and compare.md and flows.csv say the same. An
// earlier run's scenarios.jsonl in the folder labels none of the grid's
// flows.
func TestGridCompareMarksFlows(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, FileScenarios), []byte(`{"scenario":"stale"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cols, err := ParseGridColumns("block-ech rst,strip-ech")
	if err != nil {
		t.Fatal(err)
	}
	g, err := RunGrid(context.Background(), GridConfig{OutDir: dir, Columns: cols, Rows: []string{"echlab/do53", "echlab/doh"}})
	if err != nil {
		t.Fatalf("RunGrid: %v", err)
	}
	want := map[string]int{} // action → decisions in the log that blocked or rewrote
	for _, c := range g.Cells {
		for _, d := range c.Decisions {
			want[d.Action]++
		}
	}
	if want["rst"] != 2 || want["rewrite"] != 1 {
		t.Fatalf("decisions by action: %v (want 2 rst: one per row; 1 rewrite: the Do53 row's HTTPS answer)", want)
	}
	got := map[string]int{}
	for _, f := range readFlows(t, g.OutDir) {
		got[f.AdversaryAction]++
		if f.Scenario == "stale" {
			t.Errorf("flow %d labelled by the stale scenarios.jsonl", f.ID)
		}
		if !slices.Contains(g.Columns, f.AdversaryColumn) || !slices.ContainsFunc(g.Rows, func(r GridRow) bool { return r.Name == f.AdversaryRow }) {
			t.Errorf("flow %d: column %q row %q", f.ID, f.AdversaryColumn, f.AdversaryRow)
		}
		switch f.AdversaryAction {
		case "rst":
			if f.AdversaryPolicy != "block-ech rst" || f.AdversaryColumn != "block-ech rst" || f.Transport != observe.TransportTCP ||
				f.SNI != PublicName || f.ECH == "" {
				t.Errorf("reset flow %d: %s %s SNI %q ECH %q", f.ID, f.AdversaryPolicy, f.Transport, f.SNI, f.ECH)
			}
		case "rewrite":
			if f.AdversaryPolicy != "strip-ech" || f.AdversaryColumn != "strip-ech" || f.AdversaryRow != "echlab/do53" ||
				f.Transport != observe.TransportUDPDNS || len(f.DNS) != 2 || f.DNS[0].Type != "HTTPS" || !strings.Contains(f.AdversaryDetail, "removed ech") {
				t.Errorf("rewritten flow %d: %s %s %+v %q", f.ID, f.AdversaryPolicy, f.Transport, f.DNS, f.AdversaryDetail)
			}
		case "pass":
			if f.AdversaryPolicy != "" {
				t.Errorf("passed flow %d: policy %q", f.ID, f.AdversaryPolicy)
			}
		default:
			t.Errorf("flow %d (%s %s): adversary action %q", f.ID, f.Transport, f.SNI, f.AdversaryAction)
		}
	}
	if got["rst"] != want["rst"] || got["rewrite"] != want["rewrite"] {
		t.Errorf("flows by action %v, decisions %v", got, want)
	}
	md, err := os.ReadFile(filepath.Join(g.OutDir, FileCompareMD))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"## " + observe.AdversaryHeading, "| block-ech rst | block-ech rst | rst | 2 | 2 |", "| strip-ech | strip-ech | rewrite | 1 | 1 |"} {
		if !strings.Contains(string(md), w) {
			t.Errorf("compare.md lacks %q:\n%s", w, md)
		}
	}
	if strings.Contains(string(md), "matched no flow") {
		t.Errorf("compare.md: decisions joined no flow:\n%s", md)
	}
	f, err := os.Open(filepath.Join(g.OutDir, FileFlowsCSV))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) < 2 {
		t.Fatalf("flows.csv: %v", err)
	}
	col, csvGot := slices.Index(rows[0], "adversary_action"), map[string]int{}
	for _, r := range rows[1:] {
		csvGot[r[col]]++
	}
	if col < 0 || csvGot["rst"] != got["rst"] || csvGot["rewrite"] != got["rewrite"] || csvGot["pass"] != got["pass"] {
		t.Errorf("flows.csv by action %v, flows.jsonl %v", csvGot, got)
	}
}
