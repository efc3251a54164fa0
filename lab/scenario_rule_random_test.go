package lab

import (
	"net/netip"
	"strings"
	"testing"
)

// TestScenarioJoinRandomByService: a random rule with a server port (and
// protocol) joins only flows to that service, so one list of randoms (a
// browser's keylog) splits into the page's flows and the DoH ones; the
// client port and the time window of a random rule are not consulted.
func TestScenarioJoinRandomByService(t *testing.T) {
	r := strings.Repeat("ab", 32)
	rules := []ScenarioRule{
		{Scenario: "b/ech", ClientRandoms: []string{r}, Proto: ProtoTCP, ServerPort: 443, ClientPort: 1},
		{Scenario: "b/ech/doh", ClientRandoms: []string{r}, ServerPort: 8443},
	}
	lo := netip.MustParseAddr("127.0.0.1")
	for _, tc := range []struct {
		transport string
		port      uint16
		want, by  string
	}{
		{TransportTCP, 443, "b/ech", JoinClientRandom},
		{TransportQUIC, 443, "quic/443", ""}, // the rule is TCP only
		{TransportTCP, 8443, "b/ech/doh", JoinClientRandom},
		{TransportTCP, 9000, "tcp/9000", ""},
	} {
		f := &Flow{Transport: tc.transport, ClientRandom: r, Client: netip.AddrPortFrom(lo, 50000),
			Server: netip.AddrPortFrom(lo, tc.port)}
		if got, by := joinScenario(f, rules); got != tc.want || by != tc.by {
			t.Errorf("%s to %d: %q by %q, want %q by %q", tc.transport, tc.port, got, by, tc.want, tc.by)
		}
	}
}
