package adversary

import (
	"errors"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/echlab/echlab/lab/capture"
	"github.com/echlab/echlab/lab/observe"
)

// Bounds of the QUIC flow table.
const (
	// quicFlowIdle is how long a QUIC client flow is remembered without a
	// datagram either way: a later datagram starts a new flow.
	quicFlowIdle = 60 * time.Second
	// maxQUICFlows bounds the table: a new flow beyond it evicts the expired
	// ones, else the one idle longest.
	maxQUICFlows = 4096
)

// roleDoQ is the role of the DNS-over-QUIC relays.
const roleDoQ capture.Role = "dns/doq"

// quicRole reports whether the UDP datagrams of a relay of role r are QUIC
// whose Initials the adversary reads: HTTP/3, DoH3 and DoQ.
func quicRole(r capture.Role) bool {
	return strings.HasPrefix(string(r), roleHTTPSPfx) || r == roleDoH3 || r == roleDoQ
}

// quicKey is one client flow through one relay.
type quicKey struct{ client, relay netip.AddrPort }

// quicState is what the adversary does with a QUIC client flow.
type quicState uint8

const (
	quicReading    quicState = iota // the ClientHello is not whole yet: pass
	quicPass                        // decided to pass, or gave up reading: pass
	quicBlackHole                   // blocked: drop every datagram both ways
	quicDropServer                  // rst-after-hello: pass the client's, drop the server's
)

// quicFlow is one client flow's state; its fields are guarded by mu, last
// by the table's lock.
type quicFlow struct {
	mu    sync.Mutex
	state quicState
	hello *observe.QUICHello // while reading
	last  time.Time
}

// quicTable follows QUIC client flows: a bounded map, entries expiring
// after quicFlowIdle without traffic.
type quicTable struct {
	mu        sync.Mutex
	flows     map[quicKey]*quicFlow
	lastSweep time.Time
}

// flow returns the flow of k, refreshing its time, or a new one when
// create is set (a datagram toward the server); nil otherwise.
func (t *quicTable) flow(k quicKey, create bool, now time.Time) *quicFlow {
	t.mu.Lock()
	defer t.mu.Unlock()
	if fl, ok := t.flows[k]; ok {
		if now.Sub(fl.last) < quicFlowIdle {
			fl.last = now
			return fl
		}
		delete(t.flows, k)
	}
	if !create {
		return nil
	}
	if t.flows == nil {
		t.flows = map[quicKey]*quicFlow{}
	}
	if len(t.flows) >= maxQUICFlows || now.Sub(t.lastSweep) >= quicFlowIdle {
		t.sweep(now)
	}
	fl := &quicFlow{hello: new(observe.QUICHello), last: now}
	t.flows[k] = fl
	return fl
}

// sweep removes the expired flows, and when the table is still full, the
// one idle longest.
func (t *quicTable) sweep(now time.Time) {
	t.lastSweep = now
	var oldest quicKey
	var oldestAt time.Time
	for k, fl := range t.flows {
		switch {
		case now.Sub(fl.last) >= quicFlowIdle:
			delete(t.flows, k)
		case oldestAt.IsZero() || fl.last.Before(oldestAt):
			oldest, oldestAt = k, fl.last
		}
	}
	if len(t.flows) >= maxQUICFlows {
		delete(t.flows, oldest)
	}
}

// len is the number of flows in the table.
func (t *quicTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.flows)
}

// quic decides about a datagram of a QUIC relay: a client flow's
// datagrams are read until its ClientHello is whole, then the ClientHello
// policies decide the flow once, as Stream decides a TCP connection. A
// flow already decided costs one table lookup.
func (a *Adversary) quic(f capture.Flow, toServer bool, b []byte) ([]byte, capture.Verdict) {
	now := time.Now
	if a.now != nil {
		now = a.now
	}
	fl := a.quicFlows.flow(quicKey{f.Client, f.Relay}, toServer, now())
	if fl == nil {
		return b, capture.Pass // the server's datagram to a flow not followed
	}
	fl.mu.Lock()
	defer fl.mu.Unlock()
	switch {
	case fl.state == quicBlackHole, fl.state == quicDropServer && !toServer:
		return nil, capture.Drop
	case fl.state != quicReading || !toServer:
		return b, capture.Pass
	}
	msg, ok, err := fl.hello.Add(b)
	if !ok {
		if errors.Is(err, observe.ErrQUICHelloGaveUp) {
			fl.state, fl.hello = quicPass, nil
		}
		return b, capture.Pass
	}
	fl.hello = nil
	h := helloFromMessage(msg)
	v, d := a.judgeHello(f, h)
	switch v {
	case capture.Pass:
		fl.state = quicPass
	case capture.ResetAfterReply:
		fl.state = quicDropServer
		d.Detail += "; QUIC: the ClientHello passes, every datagram of the server is dropped"
	default:
		fl.state = quicBlackHole
		d.Detail += "; QUIC: a black hole, every datagram of the flow dropped both ways"
	}
	a.record(sightings(f, h), d)
	if fl.state == quicBlackHole {
		return nil, capture.Drop
	}
	return b, capture.Pass
}
