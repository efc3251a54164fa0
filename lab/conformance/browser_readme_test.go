package conformance

import (
	"os"
	"strings"
	"testing"
)

// TestReadmeBrowserTable: the README's browser table shows, for each cell
// TestBrowserConformance asserts, the grade and outcome it asserts
// ("pass (ech)"), so that the table and the test cannot drift apart.
func TestReadmeBrowserTable(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	start := strings.Index(text, "<!-- conformance-browser-table -->")
	end := strings.Index(text, "<!-- /conformance-browser-table -->")
	if start < 0 || end < start {
		t.Fatal("README.md has no browser table between the markers")
	}
	// rows: case name → its cells (chromium, firefox, then both with
	// TargetName the origin).
	rows := map[string][]string{}
	for _, line := range strings.Split(text[start:end], "\n") {
		f := strings.Split(line, "|")
		if len(f) != 8 || !strings.HasPrefix(strings.TrimSpace(f[1]), "`") {
			continue
		}
		cells := make([]string, 4)
		for i := range cells {
			cells[i] = strings.TrimSpace(f[3+i])
		}
		rows[strings.Trim(strings.TrimSpace(f[1]), "`")] = cells
	}
	for _, name := range browserCICases {
		row, col := name, 0
		if base, ok := strings.CutSuffix(name, OriginTargetSuffix); ok {
			row, col = base, 2
		}
		cells, ok := rows[row]
		if !ok {
			t.Errorf("README's browser table has no row %s", row)
			continue
		}
		for i, cl := range BrowserClients() {
			w := wantBrowser[name][cl]
			if want := string(w.grade) + " (" + string(w.outcome) + ")"; cells[col+i] != want {
				t.Errorf("README's browser table, %s/%s: %q, TestBrowserConformance asserts %q", name, cl, cells[col+i], want)
			}
		}
	}
}
