package resolver

import (
	"net"
	"net/netip"
	"time"
)

// middleware is a Handler that wraps next (the metrics, the query log).
// The UDP fast path answers without calling Handlers; it walks the chain
// of middlewares down to the Authority and calls observe for each query
// it answers instead, so that every query is still counted and logged.
type middleware struct {
	Handler         // records the query and calls next
	next    Handler // the wrapped Handler
	observe func(*fastObs)
}

// fastObs is what the fast path tells middlewares about one query.
type fastObs struct {
	transport string
	client    netip.AddrPort
	entry     *fastEntry
	start     time.Time
	elapsed   time.Duration
}

// clientAddr is the client as the slow path's Meta.Client has it.
func (o *fastObs) clientAddr() net.Addr { return net.UDPAddrFromAddrPort(o.client) }

// logEntry is the query log line of the query, as newEntry writes it.
func (o *fastObs) logEntry() QueryLogEntry {
	return QueryLogEntry{
		Time:      o.start.UTC().Format(time.RFC3339Nano),
		Transport: o.transport,
		Client:    o.clientAddr().String(),
		QName:     o.entry.qname,
		QType:     o.entry.qtype,
		Rcode:     o.entry.rcode,
		Size:      o.entry.size,
		LatencyUS: o.elapsed.Microseconds(),
	}
}

// observeFast counts a query the fast path answered, as Wrap does.
func (m *Metrics) observeFast(o *fastObs) {
	k := queryKey{transport: o.transport, qtype: o.entry.qtypeNum, rcode: o.entry.rcodeNum}
	m.mu.RLock()
	c, okc := m.counters[k]
	t, okt := m.timers[k.transport]
	m.mu.RUnlock()
	if !okc || !okt {
		c, t = m.children(k)
	}
	c.Inc()
	t.Observe(o.elapsed.Seconds())
}

// fastChain returns the Authority at the end of h's chain of middlewares
// and their observers, or nil when the chain holds another Handler (the
// fast path would skip what it does).
func fastChain(h Handler) (*Authority, []func(*fastObs)) {
	var obs []func(*fastObs)
	for {
		switch v := h.(type) {
		case *Authority:
			return v, obs
		case *middleware:
			if v.observe == nil {
				return nil, nil
			}
			obs = append(obs, v.observe)
			h = v.next
		default:
			return nil, nil
		}
	}
}
