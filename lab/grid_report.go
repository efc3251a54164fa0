package lab

import (
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// GridTable is the grid as a Markdown table: a row per adversary column,
// a column per client row; each cell its outcome, the error class, where
// the true name leaked and, with times, how long the client took. A
// leading "!" marks a cell the RFCs do not expect. The README's table is
// this table without times.
func GridTable(g *GridResult, times bool) string {
	var b strings.Builder
	b.WriteString("| adversary \\ client |")
	for _, r := range g.Rows {
		fmt.Fprintf(&b, " %s |", r.Name)
	}
	b.WriteString("\n|---|" + strings.Repeat("---|", len(g.Rows)) + "\n")
	for _, c := range g.Columns {
		fmt.Fprintf(&b, "| `%s` |", c)
		for _, r := range g.Rows {
			text := "—"
			if cell := g.Cell(r.Name, c); cell != nil {
				text = cellWords(*cell, times)
			}
			fmt.Fprintf(&b, " %s |", text)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// cellWords is a table cell: "ech", "! clear · sni+dns", "failed (timeout)".
func cellWords(c GridCell, times bool) string {
	var b strings.Builder
	if !c.AsExpected {
		b.WriteString("! ")
	}
	b.WriteString(c.Outcome)
	if c.ErrorClass != "" {
		fmt.Fprintf(&b, " (%s)", c.ErrorClass)
	}
	if len(c.Leaks) > 0 {
		fmt.Fprintf(&b, " · %s", strings.Join(c.Leaks, "+"))
	}
	if times {
		fmt.Fprintf(&b, " %s", shortDuration(c.Duration))
	}
	return b.String()
}

// cellText is a cell in a few words: "ech 14 ms", "failed (timeout)
// 2.0 s", "clear, leaks sni+dns 9 ms"; a leading "!" when the RFCs
// expect another outcome.
func cellText(c GridCell) string {
	var b strings.Builder
	if !c.AsExpected {
		b.WriteString("! ")
	}
	b.WriteString(c.Outcome)
	if c.ErrorClass != "" {
		fmt.Fprintf(&b, " (%s)", c.ErrorClass)
	}
	if len(c.Leaks) > 0 {
		fmt.Fprintf(&b, ", leaks %s", strings.Join(c.Leaks, "+"))
	}
	fmt.Fprintf(&b, " %s", shortDuration(c.Duration))
	return b.String()
}

// shortDuration prints milliseconds under a second, else seconds.
func shortDuration(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}

// writeGrid writes grid.json and grid.md.
func writeGrid(dir string, g *GridResult) error {
	if err := writeFile(filepath.Join(dir, FileGridJSON), func(w io.Writer) error {
		return writeJSON(w, map[string]any{"schema": 1, "grid": g})
	}); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, FileGridMD), func(w io.Writer) error { return writeGridMD(w, g) })
}

// writeGridMD writes the grid as Markdown: one table (a column per
// adversary column, a row per client), then each cell's expectation and
// what the adversary did.
func writeGridMD(w io.Writer, g *GridResult) error {
	var b strings.Builder
	b.WriteString("# Adversary grid\n\n")
	b.WriteString("Each client row against each adversary column, one connection to https://" + SecretName + " each. " +
		"Outcomes: **ech** (connected, the name hidden), **ech-retried**, **clear** (connected with the true name in the clear SNI: " +
		"fail-open for an ECH client), **grease** (GREASE ECH, the name in the clear by design), **failed** (gave up; the error class " +
		"in brackets). *leaks* lists where the adversary saw the true name in the clear (sni, dns = a Do53 query). " +
		"A cell marked ! is not what RFC 9849 / RFC 9848 expect of a compliant client of that kind.\n\n")
	fmt.Fprintf(&b, "%d cells, %d not as the RFCs expect.\n\n", len(g.Cells), g.Deviations)
	b.WriteString(GridTable(g, true))
	b.WriteString("\n## Rows\n\n")
	for _, r := range g.Rows {
		fmt.Fprintf(&b, "- **%s**: %s\n", r.Name, r.About)
	}
	b.WriteString("\n## Cells\n\n")
	for _, c := range g.Cells {
		fmt.Fprintf(&b, "- **%s** × `%s`: %s", c.Row, c.Column, cellText(c))
		if len(c.Expected) > 0 {
			fmt.Fprintf(&b, "; expected %s: %s", strings.Join(c.Expected, " or "), c.Why)
		}
		if c.Saw != "" {
			fmt.Fprintf(&b, "; the adversary: %s", c.Saw)
		}
		if c.Error != "" {
			fmt.Fprintf(&b, "; error: %s", c.Error)
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// gridLetters are the one-letter outcomes of WriteGridText.
var gridLetters = map[string]string{GridECH: "E", GridECHRetried: "R", GridClear: "C", GridGREASE: "G", GridFailed: "F"}

// WriteGridText writes the grid for a terminal: a line per adversary
// column, a one-letter cell per client row (numbered in the legend), "!"
// after a cell the RFCs do not expect and "*" after one where the true
// name leaked in the SNI.
func WriteGridText(w io.Writer, g *GridResult) error {
	var b strings.Builder
	width := len("adversary \\ client")
	for _, c := range g.Columns {
		width = max(width, len(c))
	}
	width = min(width, 48)
	fmt.Fprintf(&b, "%-*s", width, "adversary \\ client")
	for i := range g.Rows {
		fmt.Fprintf(&b, " %-4d", i+1)
	}
	b.WriteString("\n")
	for _, c := range g.Columns {
		name := c
		if len(name) > width {
			name = name[:width-1] + "…"
		}
		fmt.Fprintf(&b, "%-*s", width, name)
		for _, r := range g.Rows {
			text := "-"
			if cell := g.Cell(r.Name, c); cell != nil {
				text = gridLetters[cell.Outcome]
				if !cell.AsExpected {
					text += "!"
				}
				if slices.Contains(cell.Leaks, "sni") {
					text += "*"
				}
			}
			fmt.Fprintf(&b, " %-4s", text)
		}
		b.WriteString("\n")
	}
	b.WriteString("\nclients:")
	for i, r := range g.Rows {
		fmt.Fprintf(&b, " %d=%s", i+1, r.Name)
	}
	fmt.Fprintf(&b, "\nE ech, R ech after a retry, C connected in the clear, G GREASE, F failed closed; "+
		"! not what the RFCs expect (%d cells), * the true name seen in the SNI\n", g.Deviations)
	_, err := io.WriteString(w, b.String())
	return err
}
