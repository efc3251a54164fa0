package lab

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/echlab/echlab/client"
	"github.com/echlab/echlab/lab/observe"
)

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
	// AcceptedFlows of VerifiedFlows (the flows whose acceptance the keys
	// could check) showed the server's ECH confirmation.
	AcceptedFlows int  `json:"ech_accepted_flows"`
	VerifiedFlows int  `json:"ech_verified_flows"`
	HRR           bool `json:"hrr"` // a HelloRetryRequest was seen
	// DNSNames are the names the observer read in plain DNS queries.
	DNSNames []string               `json:"dns_names"`
	Names    []observe.NameExposure `json:"names"`  // every name learned, and from where
	Leaked   []string               `json:"leaked"` // hidden names the observer learned anyway
	// LeakExpected: every leak is by design: a client that put its true
	// name in the SNI (no ECH, GREASE, fallback) or asked for it in plain
	// Do53. A leak that is not is a finding.
	LeakExpected bool `json:"leak_expected"`

	HandshakeMS      float64 `json:"handshake_ms"`       // client-measured, mean over OK cases
	ClientHelloBytes int     `json:"client_hello_bytes"` // observed on the wire, largest
	// HandshakeMedianMS is the median of the OK cases' handshake times
	// (HandshakeN of them).
	HandshakeMedianMS float64 `json:"handshake_median_ms"`
	HandshakeN        int     `json:"handshake_n"`
	ClientHelloMin    int     `json:"client_hello_bytes_min"` // observed on the wire, smallest
	// Sizes are the ClientHello and ECH payload sizes by inner name length
	// (with keys), when the row's inner names have several lengths
	// (padding-sweep): the length side channel.
	Sizes []NameLengthSize `json:"sizes_by_name_length,omitempty"`
	sizes nameSizes        // being built

	// verdictMain and notes are Verdict's sentence and its notes ("ALPN
	// in clear …"), which the glance prints once as footnotes.
	verdictMain string
	notes       []string
	Verdict     string `json:"verdict"`

	// ALPN lists the protocols the observer read in the clear in the
	// ClientHellos to the service (ESNI hides none of them).
	ALPN []string `json:"observer_alpn"`
	// InnerALPN lists the protocols of the inner ClientHellos, recovered
	// with the key sets; HiddenALPN those of them the observer never read
	// in the clear on the row's connections to the service.
	InnerALPN  []string `json:"inner_alpn_with_keys"`
	HiddenALPN []string `json:"alpn_hidden"`

	// Unmet lists what the scenario's Watch says the observer must see
	// and it did not (a row that has any is marked MarkLeak).
	Unmet []string `json:"unmet,omitempty"`

	scen      Scenario // the row's scenario declaration
	discovery []string // observer services of the row's DNS flows (dns, dot, h2 …)
	plainDNS  int      // plain DNS flows (Do53 over UDP or TCP)
}

// buildRows folds the cases and the compared flows into one Row per
// scenario × DNS transport, in run order.
func buildRows(cases []CaseResult, rep *observe.Report, servicePorts map[uint16]bool) []Row {
	s := &rowSet{byLabel: map[string]*Row{}, hidden: map[string][]string{}, hs: map[string][]float64{},
		clearSNI: map[string]bool{}}
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
	hidden  map[string][]string  // label → the names ECH should hide
	hs      map[string][]float64 // label → the OK cases' handshake times (ms)
	// clearSNI: label → a case's client sent its true name in the SNI
	// (no ECH, GREASE or fallback), so an SNI leak is by design.
	clearSNI map[string]bool
}

// addCase counts one case in its row, making the row on first use.
func (s *rowSet) addCase(c CaseResult) {
	label := scenarioLabel(c.Case)
	r := s.byLabel[label]
	if r == nil {
		r = &Row{Scenario: rowScenario(c.Case), Transport: c.Transport, SNI: []string{}, ECH: []string{},
			InnerSNI: []string{}, DNSNames: []string{}, Names: []observe.NameExposure{}, Leaked: []string{}, ALPN: []string{},
			InnerALPN: []string{}, HiddenALPN: []string{}, scen: c.scenario()}
		s.byLabel[label] = r
		s.rows = append(s.rows, r)
	}
	r.Cases++
	switch c.Outcome {
	case OutcomeOK:
		r.OK++
		if c.Result != nil {
			s.hs[label] = append(s.hs[label], float64(c.Result.HandshakeTime)/float64(time.Millisecond))
		}
	case OutcomeFailed:
		r.Failed++
	case OutcomeSkipped:
		r.Skipped++
		r.Skip = c.Detail
	}
	if c.Result != nil && slices.Contains([]client.ECHStatus{client.ECHNone, client.ECHGrease, client.ECHFallback}, c.Result.ECH) {
		s.clearSNI[label] = true
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
func (s *rowSet) addReport(rep *observe.Report, servicePorts map[uint16]bool) {
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
		r.setHandshake(s.hs[label])
		r.findLeaks(s.hidden[label], s.clearSNI[label])
		r.Sizes = r.sizes.list()
		for _, a := range r.InnerALPN {
			if !slices.Contains(r.ALPN, a) {
				r.HiddenALPN = append(r.HiddenALPN, a)
			}
		}
		r.checkWatch()
		r.verdictMain = r.verdict()
		for _, n := range []string{r.alpnNote(), r.echALPNNote()} {
			if n != "" {
				r.notes = append(r.notes, strings.TrimPrefix(n, "; "))
			}
		}
		r.Verdict = r.verdict() + r.alpnNote() + r.echALPNNote()
		out[i] = *r
	}
	return out
}

// addFlow adds what the observer saw on one flow of the row's cases.
func (r *Row) addFlow(f *observe.Flow, toService bool) {
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
	if f.Transport == observe.TransportUDPDNS || f.Transport == observe.TransportTCPDNS {
		r.plainDNS++
	}
	if !toService {
		add(&r.discovery, f.Service)
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
	if r.ClientHelloMin == 0 || f.ClientHelloLen < r.ClientHelloMin {
		r.ClientHelloMin = f.ClientHelloLen
	}
	r.HRR = r.HRR || f.HRR
	r.addSize(f)
	if f.ECHAccepted != nil {
		r.VerifiedFlows++
		v := "no"
		if *f.ECHAccepted {
			r.AcceptedFlows++
			v = "yes"
		}
		if !strings.Contains(r.Accepted, v) { // repeats add no arrows
			r.Accepted = strings.TrimPrefix(r.Accepted+"→"+v, "→") // stale-retry: rejected, then accepted
		}
	}
}

// findLeaks lists the hidden names the observer learned from SNI or DNS,
// and whether each leak is by design: in the SNI of a client that sent its
// true name (clearSNI), in plain Do53 queries.
func (r *Row) findLeaks(hidden []string, clearSNI bool) {
	r.LeakExpected = true
	for _, h := range hidden {
		inSNI, inDNS := slices.Contains(r.SNI, h), false
		for _, n := range r.DNSNames {
			inDNS = inDNS || n == h || strings.HasSuffix(n, "."+h)
		}
		if inSNI || inDNS {
			r.Leaked = append(r.Leaked, h)
		}
		if inSNI && !clearSNI || inDNS && r.Transport != DNSDo53 {
			r.LeakExpected = false
		}
	}
	r.LeakExpected = r.LeakExpected && len(r.Leaked) > 0
}

// setHandshake sets the mean, median and count of the OK cases'
// handshake times.
func (r *Row) setHandshake(ms []float64) {
	r.HandshakeN = len(ms)
	if len(ms) == 0 {
		return
	}
	sum := 0.0
	for _, v := range ms {
		sum += v
	}
	r.HandshakeMS = sum / float64(len(ms))
	r.HandshakeMedianMS = median(ms)
}

// median is the middle value of v (the mean of the two middle ones for an
// even count).
func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// alpnNote adds to a row's verdict what ESNI left in the clear.
func (r *Row) alpnNote() string {
	if r.Skipped == r.Cases || !slices.Contains(r.ECH, observe.ECHESNI) || len(r.ALPN) == 0 {
		return ""
	}
	return "; ESNI hid the name but not the ALPN (" + strings.Join(r.ALPN, ", ") + ")"
}

// checkWatch lists in Unmet what the scenario's Watch says the observer
// must see and it did not: an SNI other than OuterSNI on the connections
// to the service; no flow of the Discovery service, or a plain DNS flow.
func (r *Row) checkWatch() {
	w := r.scen.Observer
	if r.Cases > 0 && r.Skipped == r.Cases {
		return
	}
	for _, sni := range r.SNI {
		if w.OuterSNI != "" && sni != w.OuterSNI {
			r.Unmet = append(r.Unmet, fmt.Sprintf("SNI %s, want only %s", sni, w.OuterSNI))
		}
	}
	if w.Discovery == "" {
		return
	}
	if !slices.Contains(r.discovery, w.Discovery) {
		r.Unmet = append(r.Unmet, fmt.Sprintf("no %s flow carried the discovery", w.Discovery))
	}
	if r.plainDNS > 0 {
		r.Unmet = append(r.Unmet, fmt.Sprintf("%d plain DNS flows, want none", r.plainDNS))
	}
}
