package observe

import (
	"io"
	"strings"
	"unicode/utf8"
)

// DefaultTableWidth is the width, in runes, that the default (not wide)
// terminal tables of WriteGlance and WriteTable fit.
const DefaultTableWidth = 120

// TableOptions lays out the terminal tables of WriteGlance and WriteTable.
// The zero value is the default layout: the columns a reader needs, cut to
// fit DefaultTableWidth, and a legend.
type TableOptions struct {
	// Wide shows every column, however wide the table gets.
	Wide bool
	// Width is the width the default layout fits; 0 means
	// DefaultTableWidth. Wide tables ignore it.
	Width int
}

// FitWidth is the width the layout fits: 0 (no limit) for Wide, else
// Width or DefaultTableWidth.
func (o TableOptions) FitWidth() int {
	if o.Wide {
		return 0
	}
	if o.Width <= 0 {
		return DefaultTableWidth
	}
	return o.Width
}

// TextTable is a terminal table: a header, rows of cells, two spaces
// between columns. Cells of the columns in cut may be shortened with "…"
// to fit a width; the others never are.
type TextTable struct {
	Head []string
	Rows [][]string
	Cut  map[int]bool
}

// Add appends a row.
func (t *TextTable) Add(cells ...string) { t.Rows = append(t.Rows, cells) }

// widths are the column widths: the widest cell of each column, then,
// while the line is wider than width (> 0), the widest cuttable column one
// rune narrower, down to its header's width or 6 runes.
func (t *TextTable) widths(width int) []int {
	ws := make([]int, len(t.Head))
	for _, row := range append([][]string{t.Head}, t.Rows...) {
		for i, c := range row {
			if i < len(ws) {
				ws[i] = max(ws[i], Runes(c))
			}
		}
	}
	total := 2 * (len(ws) - 1)
	for _, w := range ws {
		total += w
	}
	for width > 0 && total > width {
		widest := -1
		for i, w := range ws {
			if t.Cut[i] && w > max(Runes(t.Head[i]), 6) && (widest < 0 || w > ws[widest]) {
				widest = i
			}
		}
		if widest < 0 {
			break
		}
		ws[widest]--
		total--
	}
	return ws
}

// Write prints the table, fitted to width when width > 0.
func (t *TextTable) Write(w io.Writer, width int) error {
	ws := t.widths(width)
	var b strings.Builder
	for _, row := range append([][]string{t.Head}, t.Rows...) {
		var line strings.Builder
		for i, c := range row {
			if i >= len(ws) {
				break
			}
			c = shorten(c, ws[i])
			line.WriteString(c)
			if i < len(row)-1 {
				line.WriteString(strings.Repeat(" ", ws[i]-Runes(c)+2))
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Runes is the width of s on a terminal: one column per rune (the marks
// and arrows used here are all narrow).
func Runes(s string) int { return utf8.RuneCountInString(s) }

// shorten cuts s to n runes, keeping two thirds of them from its start
// and the rest from its end around a "…" (a name's first label tells
// secret from public, its end says whose it is).
func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	if n <= 1 {
		return "…"
	}
	head := (n - 1) * 2 / 3
	return string(r[:head]) + "…" + string(r[len(r)-(n-1-head):])
}

// Wrap breaks text into lines of at most width runes at spaces, the lines
// after the first indented by indent spaces; width 0 leaves it whole. A
// word longer than a line stays whole on its own line.
func Wrap(text string, width, indent int) []string {
	if width <= 0 || Runes(text) <= width {
		return []string{text}
	}
	var lines []string
	line := ""
	for _, word := range strings.Fields(text) {
		switch {
		case line == "":
			line = word
		case Runes(line)+1+Runes(word) > width:
			lines = append(lines, line)
			line = strings.Repeat(" ", indent) + word
		default:
			line += " " + word
		}
	}
	return append(lines, line)
}

// Pack joins parts with " · " into lines of at most width runes (0: one
// part a line), wrapping a part that is longer than a line by itself.
func Pack(parts []string, width int) []string {
	var lines []string
	line := ""
	for _, p := range parts {
		switch {
		case line == "":
			line = p
		case width > 0 && Runes(line)+3+Runes(p) <= width:
			line += " · " + p
		default:
			lines = append(lines, Wrap(line, width, 2)...)
			line = p
		}
	}
	if line != "" {
		lines = append(lines, Wrap(line, width, 2)...)
	}
	return lines
}
