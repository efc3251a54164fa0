package resolver

import (
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/miekg/dns"
)

// fastLoopPortable reads queries from conn one at a time, answers those
// the fast path takes on this goroutine (no copy, no allocation with no
// query log) and hands the others to the Handler on goroutines, as loop
// does. On Linux, fastLoop reads and writes in batches instead.
func (s *UDPServer) fastLoopPortable(conn *net.UDPConn) {
	buf := make([]byte, dns.MaxMsgSize)
	out := make([]byte, 0, dns.MaxMsgSize)
	var key [maxFastKey]byte
	sem := make(chan struct{}, maxUDPInFlight)
	obs := fastObs{transport: TransportUDP}
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if s.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		start := s.now()
		e, q := s.fast.fastAnswer(buf[:n], s.maxSize, &key)
		if e == nil {
			s.goHandle(sem, buf[:n], net.UDPAddrFromAddrPort(from))
			continue
		}
		s.observe(&obs, from, e, start) // logged before answered, as by the slow path
		out = appendFast(out[:0], e, q)
		conn.WriteToUDPAddrPort(out, from)
	}
}

// observe tells the middlewares about a query the fast path answered,
// from start.
func (s *UDPServer) observe(obs *fastObs, from netip.AddrPort, e *fastEntry, start time.Time) {
	if len(s.obs) == 0 {
		return
	}
	obs.client, obs.entry, obs.start, obs.elapsed = from, e, start, time.Since(start)
	for _, f := range s.obs {
		f(obs)
	}
}

// now is time.Now when the server has observers (their latency needs it).
func (s *UDPServer) now() time.Time {
	if len(s.obs) == 0 {
		return time.Time{}
	}
	return time.Now()
}
