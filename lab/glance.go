package lab

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/echlab/echlab/lab/observe"
)

// Marks of a row of the at-a-glance table and of its verdict line.
const (
	MarkPass         = "✓" // ran as expected; the observer learned no hidden name
	MarkLeakExpected = "○" // a hidden name leaked by design (no ECH, GREASE, plain Do53)
	MarkLeak         = "!" // a hidden name leaked where the scenario should have hidden it
	MarkFailed       = "✗" // a case failed (the run exits non-zero)
	MarkSkipped      = "-" // every case was skipped
)

// Mark is the row's mark: skipped, failed, the observer saw what the
// scenario rules out (Unmet: MarkLeak), leak (expected), leak (not
// expected) or pass, the first that applies.
func (r Row) Mark() string {
	switch {
	case r.Cases > 0 && r.Skipped == r.Cases:
		return MarkSkipped
	case r.Failed > 0:
		return MarkFailed
	case len(r.Unmet) > 0:
		return MarkLeak
	case len(r.Leaked) > 0 && r.LeakExpected:
		return MarkLeakExpected
	case len(r.Leaked) > 0:
		return MarkLeak
	}
	return MarkPass
}

// TableOptions lays out the terminal table of WriteGlance: the same
// fields and defaults as observe.TableOptions (which lays out
// observe.WriteTable), so one value converts to the other.
type TableOptions observe.TableOptions

// width is the width the layout fits, 0 for wide (see
// observe.TableOptions.FitWidth).
func (o TableOptions) width() int { return observe.TableOptions(o).FitWidth() }

// WriteGlance prints the at-a-glance table in the default layout (see
// TableOptions.WriteGlance).
func WriteGlance(w io.Writer, rows []Row, capture string) error {
	return TableOptions{}.WriteGlance(w, rows, capture)
}

// WriteGlance prints the at-a-glance table (one row per scenario × DNS
// transport, repeats aggregated), the sizes by inner name length of the
// rows that have several (padding-sweep), a legend and one marked verdict
// per row.
func (o TableOptions) WriteGlance(w io.Writer, rows []Row, capture string) error {
	fmt.Fprintf(w, "What an on-path observer learned (%s capture):\n\n", capture)
	t := o.glanceTable(rows)
	if err := t.Write(w, o.width()); err != nil {
		return err
	}
	o.writeSizes(w, rows)
	o.writeLegend(w)
	fmt.Fprintln(w)
	o.writeVerdicts(w, rows)
	return nil
}

// writeVerdicts prints one marked verdict per row, its notes as numbered
// footnotes that rows share ("[1]"), wrapped to the width.
func (o TableOptions) writeVerdicts(w io.Writer, rows []Row) {
	var notes []string
	for _, r := range rows {
		line := r.Verdict
		if r.verdictMain != "" {
			line = r.verdictMain
			for _, n := range r.notes {
				i := slices.Index(notes, n)
				if i < 0 {
					notes, i = append(notes, n), len(notes)
				}
				line += fmt.Sprintf(" [%d]", i+1)
			}
		}
		for _, l := range observe.Wrap(r.Mark()+" "+line, o.width(), 2) {
			fmt.Fprintln(w, l)
		}
	}
	for i, n := range notes {
		for _, l := range observe.Wrap(fmt.Sprintf("[%d] %s", i+1, n), o.width(), 4) {
			fmt.Fprintln(w, l)
		}
	}
}

// glanceTable is the table of rows: every column when wide, else the
// narrow cells (see glanceLegend).
func (o TableOptions) glanceTable(rows []Row) *observe.TextTable {
	if o.Wide {
		t := &observe.TextTable{Head: []string{"", "SCENARIO", "DNS", "OBSERVER SAW SNI", "NAME IN DNS?", "ECH", "INNER (WITH KEYS)",
			"ACCEPTED", "ALPN SEEN", "HANDSHAKE MS", "CH BYTES", "RUNS"}}
		for _, r := range rows {
			inDNS := "no"
			if len(r.DNSNames) > 0 {
				inDNS = "yes: " + strings.Join(r.DNSNames, " ")
			}
			acc := accCell(r)
			if strings.Contains(r.Accepted, "→") {
				acc += " (" + r.Accepted + ")"
			}
			t.Add(r.Mark(), r.Scenario, r.Transport, list(r.SNI), skippedDash(r, inDNS), echKinds(r, false),
				list(r.InnerSNI), acc, alpnSeen(r), msCell(r), chCell(r), runsCell(r))
		}
		return t
	}
	t := &observe.TextTable{Head: []string{"  SCENARIO", "DNS", "SNI SEEN", "DNS Q", "ECH", "INNER", "ACC", "ALPN", "MS", "CH B", "OK"},
		Cut: map[int]bool{2: true, 5: true, 7: true}}
	for _, r := range rows {
		ms := msCell(r)
		if r.HandshakeN == r.OK { // n is the OK column's
			ms = strings.Fields(ms)[0]
		}
		t.Add(r.Mark()+" "+r.Scenario, r.Transport, short(r.SNI), skippedDash(r, dash(intOrEmpty(len(r.DNSNames)))),
			echKinds(r, true), short(r.InnerSNI), accCell(r), alpnShort(r), ms, chCell(r), runsCell(r))
	}
	return t
}

// verdict is the one-sentence reading of a row, with what the observer
// saw that the scenario rules out.
func (r *Row) verdict() string {
	v := r.observed()
	if len(r.Unmet) > 0 {
		v += "; not as the scenario expects: " + strings.Join(r.Unmet, ", ")
	}
	return v
}

// observed says what the observer learned of a row.
func (r *Row) observed() string {
	who := r.Scenario
	if r.Transport != "" {
		who += " over " + r.Transport
	}
	if r.Skipped == r.Cases {
		return who + ": " + r.Skip
	}
	if len(r.Leaked) > 0 {
		var where []string
		if slices.ContainsFunc(r.Leaked, func(l string) bool { return slices.Contains(r.SNI, l) }) {
			where = append(where, "SNI")
		}
		var qs []string
		for _, n := range r.DNSNames {
			if slices.Contains(r.Leaked, n) || leakedOwner(n, r.Leaked) {
				qs = append(qs, n)
			}
		}
		if len(qs) > 0 {
			where = append(where, "DNS query ("+strings.Join(qs, ", ")+")")
		}
		return fmt.Sprintf("%s: %s leaked in %s", who, strings.Join(r.Leaked, ", "), strings.Join(where, " and "))
	}
	if len(r.SNI) == 0 {
		return who + ": observer learned no name"
	}
	return fmt.Sprintf("%s: observer learned only %s", who, strings.Join(r.SNI, ", "))
}

// echALPNNote adds to the verdict of a row with real ECH what became of
// the ALPN: hidden with the name, or copied into the ClientHelloOuter.
func (r *Row) echALPNNote() string {
	if r.Skipped == r.Cases || !slices.Contains(r.ECH, observe.ECHReal) {
		return ""
	}
	switch {
	case len(r.ALPN) > 0:
		why := cmp.Or(r.scen.Render.ALPNInClear, "Go's crypto/tls copies it into the outer ClientHello")
		return "; ALPN in clear (" + strings.Join(r.ALPN, ", ") + "): " + why
	case len(r.HiddenALPN) > 0:
		return "; ECH hid the ALPN too (" + strings.Join(r.HiddenALPN, ", ") + " only inside the inner ClientHello)"
	}
	return ""
}

// leakedOwner reports whether a DNS name (e.g. _443._https.secret.lab.test)
// is about one of the leaked names.
func leakedOwner(name string, leaked []string) bool {
	for _, l := range leaked {
		if strings.HasSuffix(name, "."+l) {
			return true
		}
	}
	return false
}
