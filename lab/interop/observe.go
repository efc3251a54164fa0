package interop

import (
	"fmt"
	"slices"
	"strings"

	"github.com/echlab/echlab/lab/observe"
)

// Observed is what the capture shows of one browser on one case: the
// observer's view of its connections to the ECH server, read by lab.Compare
// with the lab's keys.
type Observed struct {
	Flows    []ObservedFlow `json:"flows"`     // connections to the ECH server, in order
	DoHFlows int            `json:"doh_flows"` // connections to the DoH resolver
	// Deciding indexes Flows: the connection the server judged the case
	// by (matched by client address and transport), or -1.
	Deciding int `json:"deciding"`
	// Disagreements say where the capture contradicts what the case
	// needs; empty when the capture agrees.
	Disagreements []string `json:"disagreements,omitempty"`
	// KeylogECH counts the ECH_SECRET/ECH_CONFIG pairs in the browser's
	// own SSLKEYLOGFILE (Firefox), and KeylogOpened the ECH flows that
	// keylog opened without the server key (see checkKeylog).
	KeylogECH    int `json:"keylog_ech,omitempty"`
	KeylogOpened int `json:"keylog_opened,omitempty"`
}

// ObservedFlow is one connection as the observer saw it.
type ObservedFlow struct {
	ID             int      `json:"id"`     // the flow's id in flows.jsonl
	Client         string   `json:"client"` // ip:port
	Transport      string   `json:"transport"`
	SNI            string   `json:"sni"` // outer SNI: what an observer reads
	ECH            string   `json:"ech"` // lab.ECHReal, lab.ECHGreaseOrKey or "" (none)
	ConfigID       *uint8   `json:"config_id,omitempty"`
	JA4            string   `json:"ja4"`
	ClientHelloLen int      `json:"client_hello_len"`
	ECHPayloadLen  int      `json:"ech_payload_len,omitempty"`
	InnerSNI       string   `json:"inner_sni,omitempty"`    // opened with the keys
	Accepted       *bool    `json:"ech_accepted,omitempty"` // verified from the ServerHello
	Warnings       []string `json:"warnings,omitempty"`
	// JoinedBy says how the flow was joined to the case
	// (observe.JoinClientRandom, ...; see observe.ScenarioRule).
	JoinedBy string `json:"joined_by"`
}

// Decider returns the deciding flow, or nil.
func (o *Observed) Decider() *ObservedFlow {
	if o == nil || o.Deciding < 0 || o.Deciding >= len(o.Flows) {
		return nil
	}
	return &o.Flows[o.Deciding]
}

// Agrees reports whether the capture agrees with the case.
func (o *Observed) Agrees() bool { return o != nil && len(o.Disagreements) == 0 }

func (o *Observed) disagreed() []string {
	if o == nil {
		return nil
	}
	return o.Disagreements
}

// observe collects the result's flows from the comparison (by the scenario
// label "BROWSER/CASE"), checks them against the case and, when they
// disagree, turns a pass into a failure that says why.
func (l *Lab) observe(res *Result, cmp *observe.Report) {
	scen := res.Browser + "/" + res.Case
	o := &Observed{Deciding: -1}
	for _, f := range cmp.Flows {
		switch {
		case f.Scenario == scen+"/doh":
			o.DoHFlows++
		case f.Scenario == scen && int(f.Server.Port()) == l.Port:
			o.Flows = append(o.Flows, observedFlow(f))
		}
	}
	o.Deciding = slices.IndexFunc(o.Flows, func(f ObservedFlow) bool {
		return f.Client == res.Client && f.Transport == res.Transport
	})
	c := Case{Name: res.Case}
	if i := slices.IndexFunc(Cases, func(x Case) bool { return x.Name == res.Case }); i >= 0 {
		c = Cases[i]
	}
	o.Disagreements = l.disagreements(c, res.Verdict, o)
	res.Observed = o
	if len(o.Disagreements) > 0 && res.Outcome == Pass {
		res.Outcome = Fail
		res.Why += "; but the capture disagrees: " + strings.Join(o.Disagreements, "; ")
	}
}

func observedFlow(f *observe.Flow) ObservedFlow {
	return ObservedFlow{ID: f.ID, Client: f.Client.String(), Transport: f.Transport, SNI: f.SNI, ECH: f.ECH,
		ConfigID: f.ECHConfigID, JA4: f.JA4, ClientHelloLen: f.ClientHelloLen, ECHPayloadLen: f.ECHPayloadLen,
		InnerSNI: f.InnerSNI, Accepted: f.ECHAccepted, Warnings: f.Warnings, JoinedBy: f.ScenarioBy}
}

// disagreements checks the observer's view against the case: the outer
// SNI an observer reads, the ECH type, the config id, and with the keys the
// inner SNI and the acceptance signal of the ServerHello.
func (l *Lab) disagreements(c Case, v Verdict, o *Observed) []string {
	if v.Client == "" {
		return nil // no server record: the server's verdict already fails
	}
	d := o.Decider()
	if d == nil {
		return []string{fmt.Sprintf("the server's deciding connection (%s from %s) is not in the capture", v.Transport, v.Client)}
	}
	var out []string
	want := func(cond bool, format string, args ...any) {
		if !cond {
			out = append(out, fmt.Sprintf("flow %d from %s: ", d.ID, d.Client)+fmt.Sprintf(format, args...))
		}
	}
	switch c.Name {
	case "ech", "h3":
		l.wantAccepted(d, c.Host, want)
	case "grease":
		want(d.SNI == PlainName, "outer SNI %q, want %s", d.SNI, PlainName)
		want(d.ECH == observe.ECHGreaseOrKey, "ECH %q, want %s (an extension no key opens)", dashIf(d.ECH), observe.ECHGreaseOrKey)
		want(d.ConfigID != nil, "no ECH config id")
		want(d.Accepted == nil || !*d.Accepted, "ECH acceptance confirmed for a GREASE extension")
	case "retry":
		l.wantAccepted(d, c.Host, want)
		if !slices.ContainsFunc(o.Flows, func(f ObservedFlow) bool { return l.staleRejected(f, c.Host) }) {
			out = append(out, fmt.Sprintf("no flow with outer SNI %s, ECH real with config id %d, inner %s, rejected by the server",
				PublicName, l.StaleID, c.Host))
		}
	}
	return out
}

// wantAccepted: outer SNI PublicName, real ECH with the current config id,
// the inner name host, and acceptance verified.
func (l *Lab) wantAccepted(d *ObservedFlow, host string, want func(bool, string, ...any)) {
	want(d.SNI == PublicName, "outer SNI %q, want %s", d.SNI, PublicName)
	want(d.ECH == observe.ECHReal, "ECH %q, want %s", dashIf(d.ECH), observe.ECHReal)
	want(d.ConfigID != nil && *d.ConfigID == l.CurrentID, "ECH config id %s, want %d", idString(d.ConfigID), l.CurrentID)
	want(d.InnerSNI == host, "inner SNI %q, want %s", d.InnerSNI, host)
	want(d.Accepted != nil && *d.Accepted, "ECH acceptance %s in the ServerHello, want confirmed", boolString(d.Accepted))
}

// staleRejected: the stale config, opened by the observer, not accepted.
func (l *Lab) staleRejected(f ObservedFlow, host string) bool {
	return f.SNI == PublicName && f.ECH == observe.ECHReal && f.ConfigID != nil && *f.ConfigID == l.StaleID &&
		f.InnerSNI == host && f.Accepted != nil && !*f.Accepted
}

func dashIf(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func idString(id *uint8) string {
	if id == nil {
		return "none"
	}
	return fmt.Sprint(*id)
}

func boolString(b *bool) string {
	if b == nil {
		return "unknown"
	}
	return fmt.Sprint(*b)
}
