package interop

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// write saves grid-browsers.json and grid-browsers.md in dir.
func (g *GridReport) write(dir string) error {
	b, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		return fmt.Errorf("interop: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, GridJSON), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("interop: %w", err)
	}
	f, err := os.Create(filepath.Join(dir, GridMD))
	if err != nil {
		return fmt.Errorf("interop: %w", err)
	}
	defer f.Close()
	return g.Markdown(f)
}

// short is a cell as the table shows it: the outcome, the browser's error
// when it failed, "!" when RFC 9849 expects otherwise, and after "·"
// where the adversary saw the true name.
func (c GridCell) short() string {
	s := c.Outcome
	if c.Error != "" {
		s += " (" + c.Error + ")"
	}
	if !c.AsExpected {
		s += " !"
	}
	if len(c.Leaks) > 0 {
		s += " · " + strings.Join(c.Leaks, "+")
	}
	return s
}

// Table writes the grid's table: one line per column (policy), one
// column per row (browser configuration), as the README shows it.
func (g *GridReport) Table(w io.Writer) error {
	names := make([]string, len(g.Rows))
	for i, r := range g.Rows {
		names[i] = r.Name
	}
	fmt.Fprintf(w, "| adversary \\ browser | %s |\n|---|%s\n", strings.Join(names, " | "), strings.Repeat("---|", len(names)))
	for _, col := range g.Columns {
		cells := make([]string, len(names))
		for i, n := range names {
			cells[i] = "-"
			if c := g.Cell(n, col); c != nil {
				cells[i] = c.short()
			}
		}
		_, err := fmt.Fprintf(w, "| `%s` | %s |\n", col, strings.Join(cells, " | "))
		if err != nil {
			return err
		}
	}
	return nil
}

// Markdown writes grid-browsers.md: the table, the browsers' versions,
// then per cell the expectation next to what was observed, and what the
// adversary did.
func (g *GridReport) Markdown(w io.Writer) error {
	fmt.Fprintf(w, "# Browsers against the adversary (ech case: %s)\n\n", SecretName)
	if err := g.Table(w); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nOutcomes: `ech` (ECH accepted, page loaded), `grease`/`clear` (connected with the true name in the clear SNI: "+
		"fail-open), `failed` (the browser's error). `!` marks a cell RFC 9849 does not expect of a compliant client "+
		"(%d here). After `·`: where the adversary saw %s (`sni`, `dns`: a Do53 query).\n\n", g.Deviations, SecretName)
	for _, r := range g.Rows {
		fmt.Fprintf(w, "- `%s`: %s\n", r.Name, r.What)
	}
	for _, b := range slices.Sorted(maps.Keys(g.Versions)) {
		fmt.Fprintf(w, "- %s: %s\n", b, g.Versions[b])
	}
	fmt.Fprintf(w, "\n| browser | adversary | observed | expected (RFC 9849) | why | the adversary did | lab DNS queries | time |\n|---|---|---|---|---|---|---|---|\n")
	for _, c := range g.Cells {
		fmt.Fprintf(w, "| %s | `%s` | %s | %s | %s | %s | %s | %.1fs |\n", c.Row, c.Column, c.short(),
			dash(strings.Join(c.Expected, " or ")), c.Why, c.Saw, dash(strings.Join(c.DNS, "; ")), c.DurationMS/1000)
	}
	return nil
}
