package lab

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// Outcome is how one case ended.
type Outcome string

// Outcomes of a case.
const (
	OutcomeOK      Outcome = "ok"      // ran and did what the scenario expects
	OutcomeFailed  Outcome = "failed"  // ran and did not: the run exits non-zero
	OutcomeSkipped Outcome = "skipped" // could not run here; Detail says why
)

// Progress prints one line per finished case ("✓ ech-shared/doh #1  12.3 ms
// accepted") and phase messages. A nil *Progress or a nil writer prints
// nothing (--quiet).
type Progress struct {
	W     io.Writer
	Total int // cases planned, for the [i/N] counter

	mu   sync.Mutex
	done int
}

// Phase prints a phase message ("starting the lab stack").
func (p *Progress) Phase(format string, args ...any) {
	if p == nil || p.W == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.W, "· "+format+"\n", args...)
}

// Case prints the line of a finished case.
func (p *Progress) Case(c Case, o Outcome, elapsed time.Duration, detail string) {
	if p == nil || p.W == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done++
	mark := map[Outcome]string{OutcomeOK: "✓", OutcomeFailed: "✗", OutcomeSkipped: "-"}[o]
	width := len(fmt.Sprint(p.Total))
	fmt.Fprintf(p.W, "%s [%*d/%d] %-36s %8.1f ms  %s\n", mark, width, p.done, p.Total, c.Label(),
		float64(elapsed)/float64(time.Millisecond), detail)
}

// Row is one line of the at-a-glance comparison and of summary.json: a
// scenario over one DNS transport, all repeats together.
type Row struct {
	Scenario  string `json:"scenario"`
	Transport string `json:"transport"` // DNS transport of discovery
	Cases     int    `json:"cases"`
	OK        int    `json:"ok"`
	Failed    int    `json:"failed"`
	Skipped   int    `json:"skipped"`
	Skip      string `json:"skip_reason,omitempty"`

	// What the observer saw on the connections to the HTTPS server.
	SNI      []string `json:"observer_sni"`        // outer (or only) server_name
	ECH      []string `json:"ech"`                 // flow ECH kinds: ech-outer, real, grease-or-unknown-key
	InnerSNI []string `json:"inner_sni_with_keys"` // recovered with the key sets
	Accepted string   `json:"ech_accepted"`        // "yes", "no", "no→yes" (a retry), "" (no verified flow)
	HRR      bool     `json:"hrr"`                 // a HelloRetryRequest was seen
	// DNSNames are the names the observer read in plain DNS queries.
	DNSNames []string       `json:"dns_names"`
	Names    []NameExposure `json:"names"`  // every name learned, and from where
	Leaked   []string       `json:"leaked"` // hidden names the observer learned anyway

	HandshakeMS      float64 `json:"handshake_ms"`       // client-measured, mean over OK cases
	ClientHelloBytes int     `json:"client_hello_bytes"` // observed on the wire, largest
	Verdict          string  `json:"verdict"`

	// ALPN lists the protocols the observer read in the clear in the
	// ClientHellos to the service (ESNI hides none of them).
	ALPN []string `json:"observer_alpn"`
	// InnerALPN lists the protocols of the inner ClientHellos, recovered
	// with the key sets; HiddenALPN those of them the observer never read
	// in the clear on the row's connections to the service.
	InnerALPN  []string `json:"inner_alpn_with_keys"`
	HiddenALPN []string `json:"alpn_hidden"`
}

// WriteGlance prints the comparison table and one verdict per row.
func WriteGlance(w io.Writer, rows []Row, capture string) error {
	fmt.Fprintf(w, "What an on-path observer learned (%s capture):\n\n", capture)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tDNS\tOBSERVER SAW SNI\tNAME IN DNS?\tECH\tINNER (WITH KEYS)\tACCEPTED\tALPN SEEN\tHANDSHAKE MS\tCH BYTES\tRUNS")
	for _, r := range rows {
		inDNS := "no"
		if len(r.DNSNames) > 0 {
			inDNS = "yes: " + strings.Join(r.DNSNames, " ")
		}
		runs := fmt.Sprintf("%d/%d ok", r.OK, r.Cases)
		if r.Skipped == r.Cases {
			runs, inDNS = "skipped", "-"
		}
		echCol := list(r.ECH)
		if r.HRR {
			echCol += " +HRR"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Scenario, r.Transport, list(r.SNI), inDNS,
			echCol, list(r.InnerSNI), dash(r.Accepted), alpnSeen(r), msCell(r.HandshakeMS), dash(intOrEmpty(r.ClientHelloBytes)), runs)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	for _, r := range rows {
		fmt.Fprintf(w, "%s %s\n", map[bool]string{true: "✗", false: "•"}[len(r.Leaked) > 0], r.Verdict)
	}
	return nil
}

// list joins a cell's values, abbreviating long lists (padding-sweep's
// inner names) to the first two and a count.
func list(v []string) string {
	switch {
	case len(v) == 0:
		return "-"
	case len(v) > 3:
		return fmt.Sprintf("%s %s … (%d names)", v[0], v[1], len(v))
	}
	return strings.Join(v, " ")
}

func msCell(ms float64) string {
	if ms == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", ms)
}

// verdict is the one-sentence reading of a row.
func (r *Row) verdict() string {
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
	if r.Skipped == r.Cases || !slices.Contains(r.ECH, ECHReal) {
		return ""
	}
	switch {
	case len(r.ALPN) > 0 && strings.HasPrefix(r.Scenario, "padding-"):
		return "; ALPN in clear (" + strings.Join(r.ALPN, ", ") + "): ech.Seal copies crypto/tls's ALPN into the outer ClientHello"
	case len(r.ALPN) > 0:
		return "; ALPN in clear (" + strings.Join(r.ALPN, ", ") + "): Go's crypto/tls copies it into the outer ClientHello"
	case len(r.HiddenALPN) > 0:
		return "; ECH hid the ALPN too (" + strings.Join(r.HiddenALPN, ", ") + " only inside the inner ClientHello)"
	}
	return ""
}

// alpnSeen is the ALPN SEEN cell of a row: the protocols read in the
// clear and, with keys, "(hidden: h2)".
func alpnSeen(r Row) string {
	out := list(r.ALPN)
	if len(r.HiddenALPN) == 0 {
		return out
	}
	if len(r.ALPN) == 0 {
		out = "none"
	}
	return out + " (hidden: " + strings.Join(r.HiddenALPN, ",") + ")"
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

// buildRows folds the cases and the compared flows into one Row per
// scenario × DNS transport, in run order.
func buildRows(cases []CaseResult, rep *Report, servicePorts map[uint16]bool) []Row {
	s := &rowSet{byLabel: map[string]*Row{}, hidden: map[string][]string{}, hsSum: map[string]float64{}}
	for _, c := range cases {
		s.addCase(c)
	}
	if rep != nil {
		s.addReport(rep, servicePorts)
	}
	return s.finish()
}

// rowSet is the rows of a run being built, by label, in run order.
type rowSet struct {
	rows    []*Row
	byLabel map[string]*Row
	hidden  map[string][]string // label → the names ECH should hide
	hsSum   map[string]float64  // label → sum of the OK cases' handshake times (ms)
}

// addCase counts one case in its row, making the row on first use.
func (s *rowSet) addCase(c CaseResult) {
	label := scenarioLabel(c.Case)
	r := s.byLabel[label]
	if r == nil {
		r = &Row{Scenario: rowScenario(c.Case), Transport: c.Transport, SNI: []string{}, ECH: []string{},
			InnerSNI: []string{}, DNSNames: []string{}, Names: []NameExposure{}, Leaked: []string{}, ALPN: []string{},
			InnerALPN: []string{}, HiddenALPN: []string{}}
		s.byLabel[label] = r
		s.rows = append(s.rows, r)
	}
	r.Cases++
	switch c.Outcome {
	case OutcomeOK:
		r.OK++
		if c.Result != nil {
			s.hsSum[label] += float64(c.Result.HandshakeTime) / float64(time.Millisecond)
		}
	case OutcomeFailed:
		r.Failed++
	case OutcomeSkipped:
		r.Skipped++
		r.Skip = c.Detail
	}
	// Discovery always asks for secret.lab.test's record; sweep cases
	// also hide their own inner names.
	for _, name := range []string{SecretName, c.InnerName} {
		if name != "" && !slices.Contains(s.hidden[label], name) {
			s.hidden[label] = append(s.hidden[label], name)
		}
	}
}

// addReport adds the observer's flows and privacy summary to the rows
// they are labelled with.
func (s *rowSet) addReport(rep *Report, servicePorts map[uint16]bool) {
	for _, f := range rep.Flows {
		if r := s.byLabel[f.Scenario]; r != nil {
			r.addFlow(f, servicePorts[f.Server.Port()])
		}
	}
	for _, sum := range rep.Summary {
		if r := s.byLabel[sum.Scenario]; r != nil && sum.Names != nil {
			r.Names = sum.Names
		}
	}
}

// finish computes each row's mean handshake time, leaks and verdict.
func (s *rowSet) finish() []Row {
	out := make([]Row, len(s.rows))
	for i, r := range s.rows {
		label := r.Scenario + "/" + r.Transport
		if r.OK > 0 {
			r.HandshakeMS = s.hsSum[label] / float64(r.OK)
		}
		r.findLeaks(s.hidden[label])
		for _, a := range r.InnerALPN {
			if !slices.Contains(r.ALPN, a) {
				r.HiddenALPN = append(r.HiddenALPN, a)
			}
		}
		r.Verdict = r.verdict() + r.alpnNote() + r.echALPNNote()
		out[i] = *r
	}
	return out
}

// addFlow adds what the observer saw on one flow of the row's cases.
func (r *Row) addFlow(f *Flow, toService bool) {
	add := func(l *[]string, v string) {
		if v != "" && !slices.Contains(*l, v) {
			*l = append(*l, v)
		}
	}
	for _, m := range f.DNS {
		if !m.Response {
			add(&r.DNSNames, strings.TrimSuffix(m.Name, "."))
		}
	}
	if !toService || f.ClientHelloLen == 0 {
		return
	}
	add(&r.SNI, f.SNI)
	add(&r.ECH, cmp.Or(f.ECH, "none"))
	add(&r.InnerSNI, f.InnerSNI)
	for _, a := range f.ALPN {
		add(&r.ALPN, a)
	}
	for _, a := range f.InnerALPN {
		add(&r.InnerALPN, a)
	}
	r.ClientHelloBytes = max(r.ClientHelloBytes, f.ClientHelloLen)
	r.HRR = r.HRR || f.HRR
	if f.ECHAccepted != nil {
		v := map[bool]string{true: "yes", false: "no"}[*f.ECHAccepted]
		switch {
		case r.Accepted == "":
			r.Accepted = v
		case !strings.HasSuffix(r.Accepted, v):
			r.Accepted += "→" + v // stale-retry: rejected, then accepted
		}
	}
}

// findLeaks lists the hidden names the observer learned from SNI or DNS.
func (r *Row) findLeaks(hidden []string) {
	for _, h := range hidden {
		leaked := slices.Contains(r.SNI, h)
		for _, n := range r.DNSNames {
			leaked = leaked || n == h || strings.HasSuffix(n, "."+h)
		}
		if leaked {
			r.Leaked = append(r.Leaked, h)
		}
	}
}
