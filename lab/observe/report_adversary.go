package observe

import (
	"cmp"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// csvAdversaryHeader are the columns WriteCSV appends for FlowAdversary.
var csvAdversaryHeader = []string{"adversary_action", "adversary_policy", "adversary_column", "adversary_row", "adversary_detail"}

// AdversaryHeading is the title of the report's section on the
// adversary's decisions.
const AdversaryHeading = "What the adversary did"

// unmatchedNote is the warning line for decisions that joined no flow, ""
// when every decision joined one.
func (s *AdversarySummary) unmatchedNote() string {
	if s.Unmatched == 0 {
		return ""
	}
	lines := make([]string, len(s.UnmatchedLines))
	for i, n := range s.UnmatchedLines {
		lines[i] = strconv.Itoa(n)
	}
	more := ""
	if s.Unmatched > len(s.UnmatchedLines) {
		more = ", …"
	}
	return fmt.Sprintf("%d decisions matched no flow in the capture (%s lines %s%s): a capture of another leg, or one that missed them",
		s.Unmatched, s.Log, strings.Join(lines, ", "), more)
}

// policyName is the policy cell: "(none)" for the passes of no policy.
func policyName(p string) string { return cmp.Or(p, "(none)") }

// writeAdversaryMarkdown writes the section on the adversary's
// decisions: the counts per column, policy and action, the flows it
// blocked or rewrote, and a warning for decisions that joined no flow.
func writeAdversaryMarkdown(b *strings.Builder, r *Report, h2 string) {
	s := r.Adversary
	if s == nil {
		return
	}
	fmt.Fprintf(b, "\n%s %s\n\nDecision log %s: %d decisions, %d joined to a flow of the capture (by the client's address, port and protocol, "+
		"the SNI or DNS question, and the time).\n\n", h2, AdversaryHeading, MarkdownCell(s.Log), s.Decisions, s.Joined)
	b.WriteString("| column | policy | action | decisions | flows |\n|---|---|---|---|---|\n")
	for _, c := range s.Counts {
		fmt.Fprintf(b, "| %s | %s | %s | %d | %d |\n", MarkdownCell(dash(c.Column)), MarkdownCell(policyName(c.Policy)), c.Action, c.Decisions, c.Flows)
	}
	if len(s.Acted) > 0 {
		b.WriteString("\nFlows it blocked or rewrote:\n\n| # | row | column | policy | action | transport | SNI / DNS | detail |\n|---|---|---|---|---|---|---|---|\n")
		for _, a := range s.Acted {
			fmt.Fprintf(b, "| %d | %s | %s | %s | %s | %s | %s | %s |\n", a.Flow, MarkdownCell(a.Row), MarkdownCell(a.Column),
				MarkdownCell(a.Policy), a.Action, a.Transport, MarkdownCell(a.Name), MarkdownCell(a.Detail))
		}
		if s.MoreActed > 0 {
			fmt.Fprintf(b, "\n… and %d more flows blocked or rewritten (flows.jsonl marks every one: `adversary_action`).\n", s.MoreActed)
		}
	} else {
		b.WriteString("\nIt blocked and rewrote nothing in this capture.\n")
	}
	if note := s.unmatchedNote(); note != "" {
		fmt.Fprintf(b, "\n- **warning: %s**\n", MarkdownCell(note))
	}
}

// writeAdversary writes the same section as text for a terminal.
func (o TableOptions) writeAdversary(w io.Writer, r *Report) error {
	s := r.Adversary
	if s == nil {
		return nil
	}
	fmt.Fprintf(w, "\nwhat the adversary did (%s: %d decisions, %d joined to flows):\n", s.Log, s.Decisions, s.Joined)
	t := &TextTable{Head: []string{"COLUMN", "POLICY", "ACTION", "DECISIONS", "FLOWS"}, Cut: map[int]bool{0: true, 1: true}}
	for _, c := range s.Counts {
		t.Add(dash(c.Column), policyName(c.Policy), c.Action, strconv.Itoa(c.Decisions), strconv.Itoa(c.Flows))
	}
	if err := t.Write(w, o.FitWidth()); err != nil {
		return err
	}
	if len(s.Acted) > 0 {
		fmt.Fprintln(w, "\nflows it blocked or rewrote:")
		t := &TextTable{Head: []string{"#", "ROW", "POLICY", "ACTION", "TRANSPORT", "SNI / DNS", "DETAIL"}, Cut: map[int]bool{1: true, 2: true, 6: true}}
		for _, a := range s.Acted {
			t.Add(strconv.Itoa(a.Flow), dash(a.Row), a.Policy, a.Action, a.Transport, dash(a.Name), dash(a.Detail))
		}
		if err := t.Write(w, o.FitWidth()); err != nil {
			return err
		}
		if s.MoreActed > 0 {
			fmt.Fprintf(w, "… and %d more flows blocked or rewritten\n", s.MoreActed)
		}
	}
	if note := s.unmatchedNote(); note != "" {
		for _, l := range Wrap("warning: "+note, o.FitWidth(), 2) {
			fmt.Fprintln(w, l)
		}
	}
	return nil
}
