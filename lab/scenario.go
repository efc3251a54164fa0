package lab

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/echlab/echlab/client"
	"github.com/echlab/echlab/resolver"
)

// ErrScenario reports an unknown scenario or DNS transport name.
var ErrScenario = errors.New("lab: unknown scenario")

// DNS transports a scenario's discovery can use, as --transports names
// them.
const (
	DNSDo53 = "do53" // plain DNS over UDP (falls back to TCP on truncation)
	DNSDoT  = "dot"  // DNS over TLS
	DNSDoH  = "doh"  // DNS over HTTPS (HTTP/2)
	DNSDoH3 = "doh3" // DNS over HTTPS over HTTP/3
	DNSDoQ  = "doq"  // DNS over QUIC
)

// AllTransports lists every DNS transport, in the order reports use.
var AllTransports = []string{DNSDo53, DNSDoT, DNSDoH, DNSDoH3, DNSDoQ}

// Scenario is one row family of the lab's matrix.
type Scenario struct {
	Name    string // as --scenarios names it
	Summary string // one line for help texts and the report
	// Default puts the scenario in the default set (all but slow ones).
	Default bool
	// EveryTransport crosses the scenario with all five DNS transports by
	// default; other scenarios use DoH unless --transports says otherwise.
	EveryTransport bool
}

// Scenarios is the lab's matrix, in run order.
var Scenarios = []Scenario{
	{Name: "baseline", Summary: "no ECH: the true name travels in the clear SNI", Default: true, EveryTransport: true},
	{Name: "ech-shared", Summary: "ECH, shared mode: one server decrypts and serves", Default: true, EveryTransport: true},
	{Name: "ech-split", Summary: "ECH, split mode: a client-facing server decrypts and relays to a backend", Default: true},
	{Name: "ech-hrr", Summary: "ECH through a HelloRetryRequest (the server forces one)", Default: true},
	{Name: "stale-retry", Summary: "DNS publishes a stale config; the server rejects it, sends retry configs, the client retries", Default: true},
	{Name: "grease", Summary: "a GREASE ECH extension: looks like ECH, hides nothing", Default: true},
	{Name: "ech-pq", Summary: "ECH with a post-quantum HPKE KEM (X-Wing, 0x647a)", Default: true},
	{Name: "padding-on", Summary: "ClientHelloOuter sealed with the default padding policy", Default: true},
	{Name: "padding-off", Summary: "ClientHelloOuter sealed without padding", Default: true},
	{Name: ScenarioHideALPN, Summary: "ECH hiding the ALPN too: inner ALPN h2, no ALPN in the ClientHelloOuter, key_share compressed (sealed by ech.Seal)", Default: true},
	{Name: "esni", Summary: "legacy ESNI (draft-02): _esni TXT keys, the name encrypted, ALPN in the clear; no server completes it", Default: true},
	{Name: "padding-sweep", Summary: "inner names of 5..60 characters, padding on and off (length side channel)"},
	{Name: "ech-shared-h3", Summary: "ECH, shared mode, over HTTP/3 (QUIC); added by --h3"},
}

// LookupScenario returns the scenario of a name.
func LookupScenario(name string) (Scenario, error) {
	for _, s := range Scenarios {
		if s.Name == name {
			return s, nil
		}
	}
	return Scenario{}, fmt.Errorf("%w %q (known: %s)", ErrScenario, name, ScenarioNames())
}

// ScenarioNames lists every scenario name, comma-separated.
func ScenarioNames() string {
	names := make([]string, len(Scenarios))
	for i, s := range Scenarios {
		names[i] = s.Name
	}
	return strings.Join(names, ",")
}

// Case is one run of the matrix: a scenario, the DNS transport its
// discovery uses, and the repeat index. Sweep cases also carry the inner
// name and padding policy.
type Case struct {
	Scenario  string `json:"scenario"`
	Transport string `json:"transport"`
	Repeat    int    `json:"repeat"`
	InnerName string `json:"inner_name,omitempty"`
	Padding   string `json:"padding,omitempty"` // "default" or "none" for padding scenarios
}

// Label names the case in progress lines: "ech-shared/doh #1".
func (c Case) Label() string {
	l := c.Scenario + "/" + c.Transport
	if c.InnerName != "" {
		l += " " + c.InnerName + " padding=" + c.Padding
	}
	return fmt.Sprintf("%s #%d", l, c.Repeat)
}

// plan expands a selection into the cases to run, in order: scenarios
// (nil means every Default one, plus ech-shared-h3 when h3), transports
// (nil means the default rule: all five for EveryTransport scenarios, DoH
// for the others; "all" means all five for every scenario), repeat times
// each (at least once).
func plan(scenarios, transports []string, repeat int, h3 bool) ([]Case, error) {
	sel, err := selectScenarios(scenarios, h3)
	if err != nil {
		return nil, err
	}
	tr, err := selectTransports(transports)
	if err != nil {
		return nil, err
	}
	repeat = max(repeat, 1)
	var cases []Case
	for _, s := range sel {
		ts := tr
		switch {
		case tr == nil && s.EveryTransport:
			ts = AllTransports
		case tr == nil:
			ts = []string{DNSDoH}
		}
		for _, t := range ts {
			for r := range repeat {
				cases = append(cases, expand(s, t, r+1)...)
			}
		}
	}
	return cases, nil
}

func selectScenarios(names []string, h3 bool) ([]Scenario, error) {
	var sel []Scenario
	if len(names) == 0 {
		for _, s := range Scenarios {
			if s.Default {
				sel = append(sel, s)
			}
		}
	}
	for _, n := range names {
		s, err := LookupScenario(strings.TrimSpace(n))
		if err != nil {
			return nil, err
		}
		if !slices.ContainsFunc(sel, func(x Scenario) bool { return x.Name == s.Name }) {
			sel = append(sel, s)
		}
	}
	if h3 && !slices.ContainsFunc(sel, func(x Scenario) bool { return x.Name == "ech-shared-h3" }) {
		s, _ := LookupScenario("ech-shared-h3")
		sel = append(sel, s)
	}
	return sel, nil
}

func selectTransports(names []string) ([]string, error) {
	if len(names) == 0 {
		return nil, nil
	}
	var out []string
	for _, n := range names {
		n = strings.ToLower(strings.TrimSpace(n))
		if n == "all" {
			return AllTransports, nil
		}
		if !slices.Contains(AllTransports, n) {
			return nil, fmt.Errorf("%w: DNS transport %q (known: %s, all)", ErrScenario, n, strings.Join(AllTransports, ","))
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// expand makes the cases of one scenario, transport and repeat: one,
// except for padding-sweep (every sweep name, padding on and off).
func expand(s Scenario, transport string, repeat int) []Case {
	base := Case{Scenario: s.Name, Transport: transport, Repeat: repeat}
	switch s.Name {
	case "padding-on":
		base.Padding = PaddingDefault
	case "padding-off":
		base.Padding = PaddingNone
	case "padding-sweep":
		var out []Case
		for _, name := range SweepNames() {
			for _, p := range []string{PaddingDefault, PaddingNone} {
				c := base
				c.InnerName, c.Padding = name, p
				out = append(out, c)
			}
		}
		return out
	}
	return []Case{base}
}

// Padding policies of the padding scenarios.
const (
	PaddingDefault = "default"
	PaddingNone    = "none"
)

// SweepNames returns the inner names of padding-sweep: one name of each
// length 5, 10, …, 60 characters, all under lab.test from length 10 on.
func SweepNames() []string {
	var out []string
	for n := 5; n <= 60; n += 5 {
		if n < 10 {
			out = append(out, strings.Repeat("s", n-2)+".t") // "sss.t"
			continue
		}
		out = append(out, "s"+strings.Repeat("w", n-10)+".lab.test")
	}
	return out
}

// serviceOf names the server a scenario talks to.
var serviceOf = map[string]string{
	"baseline": "baseline", "ech-shared": "shared", "ech-shared-h3": "shared", "ech-split": "split",
	"ech-hrr": "hrr", "stale-retry": "stale", "grease": "shared", "ech-pq": "pq",
	"padding-on": "shared", "padding-off": "shared", ScenarioHideALPN: "shared", "padding-sweep": "shared", "esni": "baseline",
}

// runCase runs one case and judges it. A case whose server or DNS
// transport is missing is skipped with the reason, never faked.
func (s *stack) runCase(ctx context.Context, c Case) (cr CaseResult) {
	cr = CaseResult{Case: c, Start: time.Now()}
	defer func() { cr.End = time.Now() }()
	if why, ok := s.skipped[c.Scenario]; ok {
		cr.Outcome, cr.Detail = OutcomeSkipped, "skipped: "+why
		return cr
	}
	sv, ok := s.services[serviceOf[c.Scenario]]
	dnsURL, dok := s.dnsURLs[c.Transport]
	if !ok || !dok {
		cr.Outcome, cr.Detail = OutcomeSkipped, fmt.Sprintf("skipped: no %s server or no %s resolver listener", serviceOf[c.Scenario], c.Transport)
		return cr
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CaseTimeout)
	defer cancel()
	rec := newCaseRecord(s.keylog)
	defer rec.fill(&cr)
	stub, err := resolver.NewClient(dnsURL, resolver.ClientOptions{RootCAs: s.ca.Pool(), KeyLogWriter: rec})
	if err != nil {
		cr.Outcome, cr.Detail = OutcomeFailed, err.Error()
		return cr
	}
	defer stub.Close()
	if c.Transport == DNSDo53 {
		stub = idStub{Client: stub, rec: rec}
	}
	switch {
	case c.Scenario == "esni":
		cr.Result, err = s.esniProbe(ctx, c, sv, stub, dnsURL, rec)
	case c.Padding != "" || c.Scenario == ScenarioHideALPN:
		cr.Result, err = s.sealProbe(ctx, c, sv, stub, dnsURL, rec)
	default:
		cr.Result, err = s.fetch(ctx, c, sv, stub, dnsURL, rec)
	}
	if cr.Result != nil {
		rec.addRandom(cr.Result.ClientRandom)
	}
	cr.Outcome, cr.Detail = judge(c, cr.Result, err)
	return cr
}

// fetch runs the client package against a service, discovering through
// stub, with rec as its keylog.
func (s *stack) fetch(ctx context.Context, c Case, sv *service, stub resolver.Client, dnsURL string, rec *caseRecord) (*client.Result, error) {
	opts := client.Options{Resolver: stub, DNSTransport: c.Transport, DNSServer: dnsURL,
		RootCAs: s.ca.Pool(), KeyLog: rec}
	switch c.Scenario {
	case "baseline":
		opts.Mode = client.ModeBaseline
	case "grease":
		opts.Mode = client.ModeGREASE
	case "ech-shared-h3":
		opts.HTTP3 = true
	}
	u := fmt.Sprintf("https://%s:%d/api/conn", SecretName, port(sv.addr))
	return client.Fetch(ctx, u, opts)
}

// judge says whether a case did what its scenario expects.
func judge(c Case, r *client.Result, err error) (Outcome, string) {
	if c.Scenario == "esni" {
		return judgeESNI(r, err)
	}
	if r == nil {
		return OutcomeFailed, fmt.Sprint(err)
	}
	hs := fmt.Sprintf("%.1f ms handshake", float64(r.HandshakeTime)/float64(time.Millisecond))
	if err != nil {
		return OutcomeFailed, fmt.Sprintf("ech=%s: %v", r.ECH, err)
	}
	want := client.ECHAccepted
	switch c.Scenario {
	case "baseline":
		want = client.ECHNone
	case "grease":
		want = client.ECHGrease
	}
	if r.ECH != want {
		return OutcomeFailed, fmt.Sprintf("ech=%s, want %s", r.ECH, want)
	}
	detail := fmt.Sprintf("ech=%s outer=%s inner=%s, %s", r.ECH, r.OuterSNI, r.InnerSNI, hs)
	switch {
	case c.Scenario == "stale-retry" && !r.Retried:
		return OutcomeFailed, "accepted without a retry: the stale config was not stale"
	case c.Scenario == "stale-retry":
		detail += ", retried with the server's retry configs"
	case c.Scenario == "ech-hrr" && r.ServerSaw != nil && r.ServerSaw["hrr"] != true:
		return OutcomeFailed, "the server reports no HelloRetryRequest"
	}
	return OutcomeOK, detail
}
