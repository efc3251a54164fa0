package conformance

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
)

// Output file names in the --out folder.
const (
	JSONFile     = "conformance.json"
	MarkdownFile = "conformance.md"
)

// Report is the graded table: a row per case, a cell per client.
type Report struct {
	Clients []Client     `json:"clients"`
	Cases   []CaseResult `json:"cases"`
}

// Failures lists "case/client" for every failed cell.
func (r *Report) Failures() []string {
	var out []string
	for _, cr := range r.Cases {
		for _, c := range cr.Cells {
			if c.Grade == Fail {
				out = append(out, cr.Case.Name+"/"+string(c.Client))
			}
		}
	}
	return out
}

// MustFailures lists "case/client" for every failed cell of a case at
// level MUST (what echlab conformance --strict exits 1 for).
func (r *Report) MustFailures() []string {
	var out []string
	for _, cr := range r.Cases {
		if cr.Case.Expect.Level != MUST {
			continue
		}
		for _, c := range cr.Cells {
			if c.Grade == Fail {
				out = append(out, cr.Case.Name+"/"+string(c.Client))
			}
		}
	}
	return out
}

// WriteTable writes the terminal table: case, level, server, a grade per
// client.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := []string{"case", "level", "server"}
	for _, c := range r.Clients {
		head = append(head, string(c))
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, cr := range r.Cases {
		row := []string{cr.Case.Name, string(cr.Case.Expect.Level), string(cr.Case.Server)}
		for _, c := range cr.Cells {
			row = append(row, string(c.Grade))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteMarkdown writes the table, then each case with its requirement and
// the evidence of every cell.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	b.WriteString("# ECH client conformance\n\n")
	b.WriteString("| case | level | server |")
	sep := "| --- | --- | --- |"
	for _, c := range r.Clients {
		b.WriteString(" " + string(c) + " |")
		sep += " --- |"
	}
	b.WriteString("\n" + sep + "\n")
	for _, cr := range r.Cases {
		fmt.Fprintf(&b, "| [%s](#%s) | %s | %s |", cr.Case.Name, cr.Case.Name, cr.Case.Expect.Level, cr.Case.Server)
		for _, c := range cr.Cells {
			b.WriteString(" " + string(c.Grade) + " |")
		}
		b.WriteString("\n")
	}
	for _, cr := range r.Cases {
		c := cr.Case
		fmt.Fprintf(&b, "\n## %s\n\n%s (server: %s, DNS over %s).\n\n%s\n\nPasses: %s.\n\n",
			c.Name, c.Summary, c.Server, c.DNS.transport(), c.RFC, joinOutcomes(c.Expect.Outcomes))
		for _, cell := range cr.Cells {
			fmt.Fprintf(&b, "- **%s: %s** — %s", cell.Client, cell.Grade, mdEscape(cell.Why))
			if p := cell.Evidence.Capture; p != "" {
				fmt.Fprintf(&b, " (capture: [%s](%s))", p, filepath.ToSlash(p))
			}
			b.WriteString("\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// mdEscape keeps a line of evidence from breaking the Markdown.
func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ", "*", `\*`, "_", `\_`).Replace(s)
}

// WriteFiles writes conformance.json and conformance.md into dir.
func (r *Report) WriteFiles(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("conformance: %w", err)
	}
	for name, write := range map[string]func(io.Writer) error{JSONFile: r.WriteJSON, MarkdownFile: r.WriteMarkdown} {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return fmt.Errorf("conformance: %w", err)
		}
		err = write(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("conformance: %s: %w", name, err)
		}
	}
	return nil
}
