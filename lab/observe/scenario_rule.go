package observe

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ScenarioRule labels flows with a scenario. The lab runner writes them as
// JSON lines (see ReadScenarioMap). A rule joins a flow by the most exact
// key it carries:
//
//   - ClientRandoms: a TLS or QUIC flow whose ClientHello random (outer, or
//     inner once the ECH payload opened) is listed. The other fields are
//     not consulted.
//   - DNSIDs: a DNS flow (Do53 over UDP or TCP) one of whose messages has a
//     listed id, and whose Proto, ports and start match where set.
//   - ClientPort: a flow from that port, with Proto, ServerPort and the
//     time window checked where set.
//   - otherwise the rule matches every flow that its set fields (server
//     port, time window) allow; none set matches every flow.
//
// Compare tries rules by kind in that order, more exact first (DNSIDs
// rules with a ClientPort before those without), and in file order within
// a kind, whatever order the map lists them in. Flow.ScenarioBy says
// which kind joined the flow; flows joined by a time window alone are
// named in a report warning.
type ScenarioRule struct {
	Scenario string `json:"scenario"`
	// ClientRandoms are hex ClientHello randoms (32 bytes each).
	ClientRandoms []string `json:"client_randoms,omitempty"`
	// Proto is "tcp" or "udp": the layer-4 protocol of ClientPort and
	// ServerPort. Empty matches both (maps written before it existed).
	Proto      string   `json:"proto,omitempty"`
	ClientPort uint16   `json:"client_port,omitempty"`
	ServerPort uint16   `json:"server_port,omitempty"`
	DNSIDs     []uint16 `json:"dns_ids,omitempty"`
	// Start and End bound the flow's start: at or after Start, before End.
	Start time.Time `json:"start,omitzero"`
	End   time.Time `json:"end,omitzero"`
}

// Ways a flow was joined to its scenario (Flow.ScenarioBy). A flow that no
// rule matched has none.
const (
	JoinClientRandom = "client_random" // its ClientHello random is in the rule
	JoinDNSID        = "dns_id"        // a DNS id (and port, where the rule has one)
	JoinClientPort   = "client_port"   // transport and client port
	JoinTimeWindow   = "time_window"   // the flow started in the rule's window: a fallback
	JoinRule         = "rule"          // a rule with no client key and no window (server port, or catch-all)
)

// Layer-4 protocols of ScenarioRule.Proto.
const (
	ProtoTCP = "tcp"
	ProtoUDP = "udp"
)

// proto is the flow's layer-4 protocol.
func (f *Flow) proto() string {
	if f.Transport == TransportQUIC || f.Transport == TransportUDPDNS {
		return ProtoUDP
	}
	return ProtoTCP
}

// kind is how exactly the rule joins: the Join* constant it would set.
func (s ScenarioRule) kind() string {
	switch {
	case len(s.ClientRandoms) > 0:
		return JoinClientRandom
	case len(s.DNSIDs) > 0:
		return JoinDNSID
	case s.ClientPort != 0:
		return JoinClientPort
	case !s.Start.IsZero() || !s.End.IsZero():
		return JoinTimeWindow
	}
	return JoinRule
}

// tier orders the kinds: lower is tried first.
func (s ScenarioRule) tier() int {
	switch s.kind() {
	case JoinClientRandom:
		return 0
	case JoinDNSID:
		if s.ClientPort != 0 {
			return 1
		}
		return 2
	case JoinClientPort:
		return 3
	}
	return 4 // windows and catch-alls keep their file order
}

func (s ScenarioRule) matches(f *Flow) bool {
	switch s.kind() {
	case JoinClientRandom:
		return f.ClientRandom != "" && slices.Contains(s.ClientRandoms, f.ClientRandom) ||
			f.innerRandom != nil && slices.Contains(s.ClientRandoms, hex.EncodeToString(f.innerRandom))
	case JoinDNSID:
		if !slices.ContainsFunc(f.DNS, func(m DNSMessage) bool { return slices.Contains(s.DNSIDs, m.ID) }) {
			return false
		}
	}
	return (s.Proto == "" || s.Proto == f.proto()) &&
		(s.ClientPort == 0 || s.ClientPort == f.Client.Port()) &&
		(s.ServerPort == 0 || s.ServerPort == f.Server.Port()) &&
		(s.Start.IsZero() || !f.Start.Before(s.Start)) &&
		(s.End.IsZero() || f.Start.Before(s.End))
}

// joinScenario labels f with the most exact matching rule (see
// ScenarioRule) and says how; with no match, the label is the flow's
// service and server port and how is "".
func joinScenario(f *Flow, rules []ScenarioRule) (scenario, how string) {
	for tier := range 5 {
		for _, r := range rules {
			if r.tier() == tier && r.matches(f) {
				return r.Scenario, r.kind()
			}
		}
	}
	svc := f.Service
	if svc == "" {
		svc = f.Transport
	}
	return fmt.Sprintf("%s/%d", svc, f.Server.Port()), ""
}

// windowWarning is the report line naming the flows (by ID) that only a
// time window joined to their scenario; "" when there are none.
func windowWarning(ids []int) string {
	if len(ids) == 0 {
		return ""
	}
	names := make([]string, len(ids))
	for i, id := range ids {
		names[i] = strconv.Itoa(id)
	}
	return fmt.Sprintf("scenario map: %d flows joined by time window only (no client random, DNS id or client port matched), a guess under load: flows %s",
		len(ids), strings.Join(names, ", "))
}

// ErrScenarioMap reports a bad line in a scenario map.
var ErrScenarioMap = errors.New("lab: bad scenario map")

// ReadScenarioMap reads JSON lines of ScenarioRule, e.g.
// {"scenario":"ech-doh","proto":"tcp","client_port":50123}. Blank lines
// are skipped.
func ReadScenarioMap(r io.Reader) ([]ScenarioRule, error) {
	var out []ScenarioRule
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20) // a case's randoms make long lines
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var rule ScenarioRule
		if err := json.Unmarshal(line, &rule); err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrScenarioMap, n, err)
		}
		if err := rule.check(); err != nil {
			return nil, fmt.Errorf("%w: line %d: %s", ErrScenarioMap, n, err)
		}
		out = append(out, rule)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("lab: reading scenario map: %w", err)
	}
	return out, nil
}

// check validates a rule read from a map and lowercases its randoms.
func (s *ScenarioRule) check() error {
	if s.Scenario == "" {
		return errors.New("scenario is empty")
	}
	if s.Proto != "" && s.Proto != ProtoTCP && s.Proto != ProtoUDP {
		return fmt.Errorf("proto %q: want tcp or udp", s.Proto)
	}
	for i, r := range s.ClientRandoms {
		if b, err := hex.DecodeString(r); err != nil || len(b) != 32 {
			return fmt.Errorf("client random %q is not 32 bytes of hex", r)
		}
		s.ClientRandoms[i] = strings.ToLower(r)
	}
	return nil
}
