package lab

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/echlab/echlab/client"
	"github.com/echlab/echlab/lab/observe"
)

// TestPlanPinnedTransport: ech-shared-dot-discovery discovers over DoT
// whatever --transports says, once per repeat; other scenarios follow
// --transports.
func TestPlanPinnedTransport(t *testing.T) {
	cases, err := plan([]string{ScenarioDoTDiscovery, "ech-shared"}, []string{DNSDo53, DNSDoH}, 2, false)
	if err != nil {
		t.Fatal(err)
	}
	var labels []string
	for _, c := range cases {
		labels = append(labels, c.Label())
	}
	want := []string{ScenarioDoTDiscovery + "/dot #1", ScenarioDoTDiscovery + "/dot #2",
		"ech-shared/do53 #1", "ech-shared/do53 #2", "ech-shared/doh #1", "ech-shared/doh #2"}
	if !slices.Equal(labels, want) {
		t.Errorf("plan: %v, want %v", labels, want)
	}
	if _, err := plan([]string{PlayResolverDown}, nil, 1, false); err == nil {
		t.Error("echlab run accepted a play-only scenario")
	}
	def, _ := plan(nil, nil, 1, false)
	if slices.ContainsFunc(def, func(c Case) bool { return c.Scenario == ScenarioDoTDiscovery }) {
		t.Error("the default matrix runs the only-when-named DoT-discovery scenario")
	}
}

// TestRowWatch: the DoT-discovery row is marked MarkLeak, and its verdict
// says why, when the observer sees a plain DNS flow, no DoT flow, or an SNI
// other than public.lab.test; with a DoT flow and the public name only it
// passes.
func TestRowWatch(t *testing.T) {
	label := ScenarioDoTDiscovery + "/dot"
	svc := netip.MustParseAddrPort("127.0.0.1:4443")
	yes := true
	tlsFlow := func(sni string) *observe.Flow {
		return &observe.Flow{Scenario: label, Server: svc, Transport: observe.TransportTCP, SNI: sni, ClientHelloLen: 1650,
			ECH: observe.ECHReal, InnerSNI: SecretName, ECHAccepted: &yes}
	}
	dot := &observe.Flow{Scenario: label, Server: netip.MustParseAddrPort("127.0.0.1:853"), Transport: observe.TransportTCP,
		Service: "dot", SNI: "resolver.lab.test", ClientHelloLen: 300}
	plain := &observe.Flow{Scenario: label, Server: netip.MustParseAddrPort("127.0.0.1:53"), Transport: observe.TransportUDPDNS,
		Service: "dns", DNS: []observe.DNSMessage{{Name: "public.lab.test.", Type: "A"}}}
	cases := []CaseResult{{Case: Case{Scenario: ScenarioDoTDiscovery, Transport: DNSDoT, Repeat: 1}, Outcome: OutcomeOK,
		Result: &client.Result{ECH: client.ECHAccepted}}}
	for _, tc := range []struct {
		name  string
		flows []*observe.Flow
		unmet string // "" means the row passes
	}{
		{"dot", []*observe.Flow{dot, tlsFlow(PublicName)}, ""},
		{"plain DNS too", []*observe.Flow{dot, plain, tlsFlow(PublicName)}, "1 plain DNS flows, want none"},
		{"no DoT", []*observe.Flow{tlsFlow(PublicName)}, "no dot flow carried the discovery"},
		{"other SNI", []*observe.Flow{dot, tlsFlow("other.lab.test")}, "SNI other.lab.test, want only public.lab.test"},
	} {
		rows := buildRows(cases, &observe.Report{Flows: tc.flows}, map[uint16]bool{4443: true})
		r := rows[0]
		switch {
		case tc.unmet == "" && (r.Mark() != MarkPass || len(r.Unmet) != 0):
			t.Errorf("%s: mark %s unmet %v, want a pass", tc.name, r.Mark(), r.Unmet)
		case tc.unmet != "" && (r.Mark() != MarkLeak || !slices.Contains(r.Unmet, tc.unmet) || !strings.Contains(r.Verdict, tc.unmet)):
			t.Errorf("%s: mark %s unmet %v verdict %q, want %s and %q", tc.name, r.Mark(), r.Unmet, r.Verdict, MarkLeak, tc.unmet)
		}
	}
}
