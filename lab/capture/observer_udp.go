package capture

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// RelayUDP starts a UDP relay on 127.0.0.1 (a free port) that forwards
// datagrams to backend, one session socket per client address, and
// returns its address. role says what the relay fronts; a Filter sees it
// in each Flow. With a Filter, every datagram both ways goes through
// Filter.Datagram: what it returns with Pass is forwarded, anything else
// discards the datagram (a datagram from a new client address that is
// discarded opens no session).
func (o *Observer) RelayUDP(role Role, backend string) (string, error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("lab: relay for %s: %w", backend, err)
	}
	return o.serveUDP(pc, role, backend)
}

// udpSession is one client address's socket towards the backend.
type udpSession struct {
	up   *net.UDPConn
	id   uint64 // in the observer's close table
	last time.Time
}

func (o *Observer) serveUDP(pc net.PacketConn, role Role, backend string) (string, error) {
	baddr, err := net.ResolveUDPAddr("udp", backend)
	if err != nil {
		pc.Close()
		return "", fmt.Errorf("lab: relay backend %q: %w", backend, err)
	}
	addr := pc.LocalAddr().String()
	flow := Flow{Role: role, Proto: "udp", Relay: addrPortOf(pc.LocalAddr()), Backend: backend}
	if o.WrapPacketConn != nil {
		pc = o.WrapPacketConn(pc)
	}
	if _, ok := o.track(pc); !ok {
		return "", fmt.Errorf("lab: relay for %s: %w", backend, net.ErrClosed)
	}
	r := &udpRelay{o: o, pc: pc, backend: baddr, flow: flow, idle: o.udpIdle(), sessions: map[string]*udpSession{}}
	o.mu.Lock()
	o.udp = append(o.udp, r)
	o.mu.Unlock()
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		r.run()
	}()
	return addr, nil
}

// udpRelay forwards datagrams between client addresses on pc and the
// backend, one connected session socket per client address.
type udpRelay struct {
	o        *Observer
	pc       net.PacketConn
	backend  *net.UDPAddr
	flow     Flow          // Role, Proto, Relay and Backend; Client is per datagram
	idle     time.Duration // a session's lifetime without traffic
	mu       sync.Mutex
	sessions map[string]*udpSession
}

func (r *udpRelay) run() {
	buf := make([]byte, 65535)
	for {
		n, from, err := r.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		b, ok := r.filter(from, true, buf[:n])
		if !ok {
			continue
		}
		s, err := r.session(from)
		if err != nil {
			continue
		}
		s.up.Write(b) //nolint:errcheck // UDP: a lost datagram is the client's to retry
	}
}

// session returns the session socket of a client address, making it (and
// its backend-to-client loop) on first use.
func (r *udpRelay) session(from net.Addr) (*udpSession, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := from.String()
	if s, ok := r.sessions[key]; ok {
		s.last = time.Now()
		return s, nil
	}
	c, err := r.o.dial("udp", r.backend.String())
	if err != nil {
		return nil, err
	}
	up := c.(*net.UDPConn)
	id, ok := r.o.track(up)
	if !ok {
		return nil, net.ErrClosed
	}
	s := &udpSession{up: up, id: id, last: time.Now()}
	r.sessions[key] = s
	r.o.wg.Add(1)
	go func() {
		defer r.o.wg.Done()
		r.back(s, from, key)
	}()
	return s, nil
}

// back copies the backend's datagrams to the client until the session
// has been idle for the relay's idle time or the relay closes; then the
// session leaves the session map and the observer's close table.
func (r *udpRelay) back(s *udpSession, client net.Addr, key string) {
	defer func() {
		r.mu.Lock()
		delete(r.sessions, key)
		r.mu.Unlock()
		s.up.Close()
		r.o.untrack(s.id)
	}()
	buf := make([]byte, 65535)
	for {
		s.up.SetReadDeadline(time.Now().Add(r.idle)) //nolint:errcheck
		n, err := s.up.Read(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				r.mu.Lock()
				idle := time.Since(s.last) >= r.idle
				r.mu.Unlock()
				if !idle {
					continue
				}
			}
			return
		}
		b, ok := r.filter(client, false, buf[:n])
		if !ok {
			continue
		}
		if _, err := r.pc.WriteTo(b, client); err != nil {
			return
		}
	}
}

// filter asks the Observer's Filter, if any, about one datagram between
// client and the backend, and returns the bytes to forward, or false to
// discard it.
func (r *udpRelay) filter(client net.Addr, toServer bool, b []byte) ([]byte, bool) {
	f := r.o.filter()
	if f == nil {
		return b, true
	}
	flow := r.flow
	flow.Client = addrPortOf(client)
	out, v := f.Datagram(flow, toServer, b)
	return out, v == Pass
}
