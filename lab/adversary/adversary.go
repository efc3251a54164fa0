package adversary

import (
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/echlab/echlab/lab/capture"
)

// Adversary applies a column of policies to what the lab's relays see; it
// implements capture.Filter. Its methods are safe for concurrent use.
type Adversary struct {
	policies []Policy
	names    []string // policies[i].String(), computed once

	now       func() time.Time // time.Now; tests move it
	quicFlows quicTable        // QUIC client flows (quic.go)

	mu        sync.Mutex
	decisions []Decision
	counts    map[string]int
	seen      []Sighting
}

var _ capture.Filter = (*Adversary)(nil)

// New returns an Adversary applying policies (nil: the control column,
// which passes everything but still records what it sees).
func New(policies []Policy) *Adversary {
	a := &Adversary{policies: slices.Clone(policies), counts: map[string]int{}, now: time.Now}
	for _, p := range a.policies {
		a.names = append(a.names, p.String())
	}
	return a
}

// Policies returns the column the Adversary applies.
func (a *Adversary) Policies() []Policy { return slices.Clone(a.policies) }

// Stream decides about a TCP connection from its first bytes: the first
// policy (in column order) that matches decides; no match passes. Every
// call is logged as one Decision, and the ClientHello's SNI as a Sighting.
func (a *Adversary) Stream(f capture.Flow, first []byte) capture.Verdict {
	h := readHello(first)
	v, d := a.judgeHello(f, h)
	a.record(sightings(f, h), d)
	return v
}

// judgeHello applies the column to a ClientHello (TLS over TCP, or from
// QUIC Initials): the first policy that matches decides, no match passes.
func (a *Adversary) judgeHello(f capture.Flow, h hello) (capture.Verdict, Decision) {
	d := Decision{Flow: f, SNI: h.sni, ECH: h.ech, ECHPayloadLen: h.payloadLen, ECHConfigID: h.configID}
	v := capture.Pass
	for i, p := range a.policies {
		if pv, detail, ok := p.stream(f, h); ok {
			v, d.Policy, d.Detail = pv, a.names[i], detail
			break
		}
	}
	d.Action = v.String()
	return v, d
}

// sightings is the ClientHello's SNI as a Sighting, if it has one.
func sightings(f capture.Flow, h hello) []Sighting {
	if h.sni == "" {
		return nil
	}
	return []Sighting{{Flow: f, Kind: SawSNI, Name: canonicalName(h.sni)}}
}

// Datagram decides about a UDP datagram or, on a Do53 relay, a DNS
// message: DNS answers are rewritten by the DNS policies (see dns.go);
// other datagrams are discarded by drop-udp and block-doh, and on the
// QUIC relays (HTTP/3, DoH3, DoQ) each client flow's Initials are read
// until its ClientHello is whole, which the ClientHello policies then
// judge once for the flow, as Stream does for a TCP connection (see
// quic.go). Datagrams passed untouched are not logged; a QUIC flow's
// ClientHello is, once, and a QUIC flow's later datagrams dropped by its
// verdict are not.
func (a *Adversary) Datagram(f capture.Flow, toServer bool, b []byte) ([]byte, capture.Verdict) {
	if f.Role == capture.RoleDo53 {
		return a.dns(f, toServer, b)
	}
	for i, p := range a.policies {
		if v, ok := p.datagram(f); ok {
			detail := "to server"
			if !toServer {
				detail = "to client"
			}
			a.record(nil, Decision{Flow: f, Policy: a.names[i], Action: v.String(), Detail: detail})
			return nil, v
		}
	}
	if f.Proto == "udp" && quicRole(f.Role) {
		return a.quic(f, toServer, b)
	}
	return b, capture.Pass
}

// record appends decisions and sightings, and counts the decisions that a
// policy made.
func (a *Adversary) record(saw []Sighting, ds ...Decision) {
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, d := range ds {
		d.Time = now
		a.decisions = append(a.decisions, d)
		if d.Policy != "" {
			a.counts[d.Policy]++
		}
	}
	a.seen = append(a.seen, saw...)
}

// Decisions returns every decision so far, in the order they were made.
func (a *Adversary) Decisions() []Decision {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.decisions)
}

// Counts returns how many times each policy (by String()) matched: one
// per connection it blocked or reset, per datagram it discarded, per DNS
// answer it rewrote. Policies that never matched are present with 0.
func (a *Adversary) Counts() map[string]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := maps.Clone(a.counts)
	for _, n := range a.names {
		out[n] += 0
	}
	return out
}

// Seen returns what the adversary saw in the clear, in order: every SNI
// of a ClientHello (TLS over TCP, and QUIC Initials on the HTTP/3, DoH3
// and DoQ relays, whose keys any on-path observer derives) and every Do53
// query name, each with its Flow.
func (a *Adversary) Seen() []Sighting {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.seen)
}

// canonicalName is a name in lower case without a trailing dot.
func canonicalName(s string) string {
	return strings.ToLower(strings.TrimSuffix(s, "."))
}
