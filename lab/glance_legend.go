package lab

import (
	"fmt"
	"io"
	"strings"

	"github.com/echlab/echlab/lab/observe"
)

// legendEntry explains a column or a mark: its narrow and wide names.
type legendEntry struct{ narrow, wide, text string }

// glanceLegend explains every mark and column name of the glance table.
var glanceLegend = []legendEntry{
	{"", "", MarkPass + " pass  " + MarkLeakExpected + " leak by design (no ECH, GREASE, plain Do53)  " +
		MarkLeak + " leak not expected  " + MarkFailed + " failed  " + MarkSkipped + " skipped"},
	{"DNS", "DNS", "transport of the client's DNS discovery"},
	{"SNI SEEN", "OBSERVER SAW SNI", "server_name in the clear (the outer one with ECH)"},
	{"DNS Q", "NAME IN DNS?", "names read in plain DNS queries (how many; the verdicts name them)"},
	{"ECH", "ECH", "real = opened with the keys, grease? = no key opened it (GREASE or an unknown key), esni = legacy ESNI, " +
		"+HRR = a HelloRetryRequest"},
	{"INNER", "INNER (WITH KEYS)", "inner server_name, read with the keys"},
	{"ACC", "ACCEPTED", "flows ECH-accepted / flows verified with the keys (a rejected try before a retry counts)"},
	{"ALPN", "ALPN SEEN", "in the clear; [h2] or (hidden: h2): only inside ECH"},
	{"MS", "HANDSHAKE MS", "client handshake, median ms of the OK runs (n= how many, when not the OK count)"},
	{"CH B", "CH BYTES", "ClientHello bytes on the wire (smallest–largest)"},
	{"OK", "RUNS", "cases as the scenario expects / cases"},
}

// writeLegend prints the legend under the table: the entries packed into
// lines that fit the width.
func (o TableOptions) writeLegend(w io.Writer) {
	fmt.Fprintln(w)
	var parts []string
	for _, e := range glanceLegend {
		name := e.narrow
		if o.Wide {
			name = e.wide
		}
		parts = append(parts, strings.TrimPrefix(name+": "+e.text, ": "))
	}
	for _, l := range observe.Pack(parts, o.width()) {
		fmt.Fprintln(w, l)
	}
}

// writeSizes prints, for each row with sizes by inner name length, a
// small table: name lengths across, ClientHello and ECH payload bytes
// below, cut into chunks that fit the width.
func (o TableOptions) writeSizes(w io.Writer, rows []Row) {
	for _, r := range rows {
		if len(r.Sizes) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s over %s: sizes by inner name length (the length side channel, read with the keys)\n", r.Scenario, r.Transport)
		per := len(r.Sizes)
		if width := o.width(); width > 0 {
			per = max(1, (width-2-len("ECH PAYLOAD")-2)/(len("00000")+2))
		}
		for i := 0; i < len(r.Sizes); i += per {
			chunk := r.Sizes[i:min(i+per, len(r.Sizes))]
			t := &observe.TextTable{Head: []string{"NAME LENGTH"}, Rows: [][]string{{"CLIENTHELLO"}, {"ECH PAYLOAD"}}}
			for _, s := range chunk {
				t.Head = append(t.Head, fmt.Sprint(s.NameLength))
				t.Rows[0] = append(t.Rows[0], fmt.Sprint(s.ClientHelloBytes))
				t.Rows[1] = append(t.Rows[1], dash(intOrEmpty(s.ECHPayloadBytes)))
			}
			var b strings.Builder
			t.Write(&b, 0) //nolint:errcheck // a strings.Builder
			for _, l := range strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n") {
				fmt.Fprintln(w, "  "+l)
			}
		}
	}
}
