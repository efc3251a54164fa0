package lab

import (
	"context"
	"os"
	"strings"
	"testing"
)

// Markers around the grid table in README.md.
const (
	readmeGridStart = "<!-- adversary grid: echlab run --adversary all; TestReadmeGridTable runs it and compares -->\n"
	readmeGridEnd   = "<!-- end of the adversary grid -->\n"
)

// TestReadmeGridTable: the README's adversary grid is what `echlab run
// --adversary all` gives now, cell for cell (outcome, error class,
// leaks). UPDATE_README=1 rewrites the table from this run.
func TestReadmeGridTable(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("runs the whole default grid (about 45 s): not under -short or -race")
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	before, rest, ok := strings.Cut(text, readmeGridStart)
	table, after, ok2 := strings.Cut(rest, readmeGridEnd)
	if !ok || !ok2 {
		t.Fatalf("README.md lacks the grid markers %q … %q", readmeGridStart, readmeGridEnd)
	}
	g, err := RunGrid(context.Background(), GridConfig{OutDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	want := GridTable(g, false)
	if table == want {
		return
	}
	if os.Getenv("UPDATE_README") != "" {
		if err := os.WriteFile("../README.md", []byte(before+readmeGridStart+want+readmeGridEnd+after), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Log("README.md's grid table rewritten")
		return
	}
	t.Errorf("README.md's adversary grid differs from this run (UPDATE_README=1 rewrites it):\n--- README\n%s--- this run\n%s", table, want)
}
