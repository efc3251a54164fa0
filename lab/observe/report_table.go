package observe

import (
	"cmp"
	"fmt"
	"io"
	"strings"
)

// WriteTable writes the flows and the privacy summary for a terminal in
// the default layout (see TableOptions.WriteTable).
func WriteTable(w io.Writer, r *Report) error { return TableOptions{}.WriteTable(w, r) }

// WriteTable writes the flows and the privacy summary as aligned text for
// a terminal: the columns a reader needs, fitted to the width, and a
// legend; with Wide, every column (addresses, ECH parameters, the
// server's choices, JA4).
func (o TableOptions) WriteTable(w io.Writer, r *Report) error {
	fmt.Fprintf(w, "capture: %s, %s, %d packets, %d flows\n\n", r.Format, captureKind(r), r.Packets, r.flowCount())
	if err := o.flowTable(r).Write(w, o.FitWidth()); err != nil {
		return err
	}
	if note := unlistedNote(r); note != "" {
		fmt.Fprintln(w, note)
	}
	writeWarningsText(w, r)
	fmt.Fprintln(w, "\nprivacy summary (what an on-path observer learned):")
	if err := o.summaryTable(r).Write(w, o.FitWidth()); err != nil {
		return err
	}
	for _, note := range innerInClearNotes(r) {
		for _, l := range Wrap("! "+note, o.FitWidth(), 2) {
			fmt.Fprintln(w, l)
		}
	}
	if err := o.writeAdversary(w, r); err != nil {
		return err
	}
	if !o.Wide {
		fmt.Fprintln(w)
		for _, l := range Pack(compareLegend, o.FitWidth()) {
			fmt.Fprintln(w, l)
		}
	}
	return nil
}

// compareLegend explains the narrow columns and values of WriteTable.
var compareLegend = []string{
	"SVC: service (dns, dot, doq, h2, h3, …)",
	"SNI / DNS Q: server_name in the clear, or the plain DNS questions (+ech: the answer carried an ECH config)",
	"ECH: ech-outer: an ECH extension, no keys given; real: opened with the keys; grease?: no key opened it " +
		"(GREASE or an unknown key); inner (in clear): a ClientHelloInner sent in plaintext; esni: a legacy encrypted_server_name; " +
		"+HRR: a HelloRetryRequest",
	"ACC: ECH acceptance verified with the keys",
	"CH B: ClientHello bytes",
	"ACC, DNS Q (summary): flows ECH-accepted, plain DNS questions",
	"ALPN: in the clear, [h2]: only inside ECH",
	"N: flows",
	"--wide: addresses, times, ECH parameters, the server's choices, JA4",
}

// flowTable is one row per flow.
func (o TableOptions) flowTable(r *Report) *TextTable {
	if o.Wide {
		t := &TextTable{Head: []string{"ID", "SCENARIO", "T+", "CLIENT", "SERVER", "TRANSPORT", "SERVICE", "SNI / DNS", "ALPN",
			"ECH", "INNER SNI", "ACCEPTED", "HRR", "SERVER", "CH LEN", "JA4"}}
		t0 := firstTime(r)
		for _, f := range r.Flows {
			what := f.SNI
			if len(f.DNS) > 0 {
				what = dnsSummary(f.DNS)
			}
			t.Add(fmt.Sprint(f.ID), f.Scenario, fmt.Sprintf("%.3fs", f.Start.Sub(t0).Seconds()), f.Client.String(),
				f.Server.String(), f.Transport, f.Service, dash(what), dash(strings.Join(f.ALPN, ",")), dash(echCell(f)),
				dash(f.InnerSNI), dash(accepted(f)), yesNo(f.HRR), dash(serverCell(f)), dash(intOrEmpty(f.ClientHelloLen)), dash(f.JA4))
		}
		return t
	}
	t := &TextTable{Head: []string{"#", "SCENARIO", "SVC", "SNI / DNS Q", "ECH", "INNER SNI", "ACC", "CH B"},
		Cut: map[int]bool{1: true, 3: true, 5: true}}
	for _, f := range r.Flows {
		what := f.SNI
		if len(f.DNS) > 0 {
			what = dnsShort(f.DNS)
		}
		t.Add(fmt.Sprint(f.ID), f.Scenario, dash(f.Service), dash(what), echShort(f), dash(f.InnerSNI), dash(accepted(f)),
			dash(intOrEmpty(f.ClientHelloLen)))
	}
	return t
}

// echShort is the narrow ECH cell: the kind, "+HRR".
func echShort(f *Flow) string {
	s := map[string]string{ECHGreaseOrKey: "grease?", ECHInnerClear: "inner (in clear)"}[f.ECH]
	s = cmp.Or(s, f.ECH)
	if f.HRR {
		s = strings.TrimSpace(s + " +HRR")
	}
	return dash(s)
}

// dnsShort lists a flow's DNS questions, "name TYPE", with the answer's
// rcode when not NOERROR and "+ech" when it carried an ECH config.
func dnsShort(msgs []DNSMessage) string {
	var qs []string
	idx := map[string]int{}
	for _, m := range msgs {
		key := strings.TrimSuffix(m.Name, ".") + " " + m.Type
		i, ok := idx[key]
		if !ok {
			idx[key], i = len(qs), len(qs)
			qs = append(qs, key)
		}
		if m.Response && m.Rcode != "" && m.Rcode != "NOERROR" && !strings.Contains(qs[i], " "+m.Rcode) {
			qs[i] += " " + m.Rcode
		}
		if m.Response && m.HasECH && !strings.HasSuffix(qs[i], " +ech") {
			qs[i] += " +ech"
		}
	}
	return strings.Join(qs, "; ")
}

// summaryTable is the privacy summary: a line per name each scenario
// exposed (or hid).
func (o TableOptions) summaryTable(r *Report) *TextTable {
	head := []string{"SCENARIO", "FLOWS", "TLS", "ECH", "ESNI", "ACCEPTED", "DNS Q", "ALPN IN CLEAR", "NAME", "LEARNED FROM", "FLOWS"}
	t := &TextTable{Head: head}
	if !o.Wide {
		head[5], head[7], head[10] = "ACC", "ALPN", "N"
		t.Cut = map[int]bool{0: true, 7: true, 8: true}
	}
	for _, s := range r.Summary {
		alpn := alpnCell(s)
		if !o.Wide && len(s.HiddenALPN) > 0 {
			alpn = cmp.Or(strings.Join(s.ALPN, ","), "none") + " [" + strings.Join(s.HiddenALPN, ",") + "]"
		}
		cells := []string{s.Scenario, fmt.Sprint(s.Flows), fmt.Sprint(s.TLSFlows), fmt.Sprint(s.ECHFlows), fmt.Sprint(s.ESNIFlows),
			fmt.Sprint(s.ECHAccepted), fmt.Sprint(s.DNSQueries), dash(alpn)}
		if len(s.Names) == 0 {
			t.Add(append(cells, "-", "-", "-")...)
		}
		for i, n := range s.Names {
			if i > 0 {
				cells = make([]string, 8)
			}
			t.Add(append(cells, n.Name, n.Source, fmt.Sprint(n.Flows))...)
		}
	}
	return t
}

func writeWarningsText(w io.Writer, r *Report) {
	for _, s := range r.Warnings {
		fmt.Fprintf(w, "warning: %s\n", s)
	}
	for _, f := range r.Flows {
		for _, s := range f.Warnings {
			fmt.Fprintf(w, "warning: flow %d: %s\n", f.ID, s)
		}
	}
	if r.UnlistedWarnings > 0 {
		fmt.Fprintf(w, "warning: %d more on the flows not listed\n", r.UnlistedWarnings)
	}
}

// unlistedNote is the line under a flow table that lists only the first
// flows of a streamed report; "" when it lists them all.
func unlistedNote(r *Report) string {
	n := r.unlisted()
	if n <= 0 {
		return ""
	}
	return fmt.Sprintf("… and %d more flows, not listed: a streamed report keeps the first %d (the JSON and CSV outputs have every flow)", n, len(r.Flows))
}
