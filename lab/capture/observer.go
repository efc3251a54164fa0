package capture

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/echlab/echlab/internal/relay"
)

// UDPRelayIdle is how long a UDP relay keeps a client's session socket
// without traffic before it closes it, unless Observer.UDPIdle says
// otherwise.
const UDPRelayIdle = 30 * time.Second

// Observer is the lab's on-path observer when no live capture is possible:
// a set of recording relays, one in front of each server and resolver
// listener. The DNS records and resolver URLs the client uses point at the
// relays' addresses, so every byte the client exchanges passes through
// them. The relay hands its client-side sockets to WrapConn and
// WrapPacketConn (a Recorder's wrappers), which see what a wire observer
// between client and relay would see. With a Filter the relays also act
// as an on-path adversary: they drop, reset or rewrite what the Filter
// says, and the Recorder still sees what the client sent and received.
type Observer struct {
	// WrapConn wraps each accepted client TCP connection; nil records
	// nothing.
	WrapConn func(net.Conn) net.Conn
	// WrapPacketConn wraps each client-facing UDP socket; nil records
	// nothing.
	WrapPacketConn func(net.PacketConn) net.PacketConn
	// UDPIdle is how long a UDP session socket lives without traffic;
	// zero means UDPRelayIdle.
	UDPIdle time.Duration
	// Dialer, when not nil, dials the relays' connections and UDP
	// session sockets to their backends (intercept's marks them so that
	// its rules let them through); nil dials with a 5 s timeout and no
	// options.
	Dialer *net.Dialer
	// Filter, when not nil, is an on-path adversary the relays ask about
	// each TCP connection (its first bytes) and each datagram (see Filter
	// and the Verdicts). Nil relays every byte unchanged, on the plain
	// copying path. Set it before the first relay starts; SetFilter
	// changes it while the relays run.
	Filter Filter

	// filterSet holds what SetFilter set (it wins over the field once
	// set).
	filterSet atomic.Pointer[filterBox]

	mu     sync.Mutex
	closed bool
	// open holds what Close closes: the listeners and sockets of the
	// relays, and each connection and UDP session while it lasts (it is
	// removed when it ends, so the table follows the traffic in flight,
	// not every connection ever relayed).
	open   map[uint64]io.Closer
	nextID uint64
	udp    []*udpRelay
	tcpLns []net.Listener // the TCP relays' listeners, for Settle
	wg     sync.WaitGroup

	// unjudged counts the accepted TCP connections a Filter has not
	// seen yet (Settle).
	unjudged atomic.Int64
}

// filterBox lets an interface value (nil included) sit in an
// atomic.Pointer.
type filterBox struct{ f Filter }

// SetFilter replaces the Filter while relays may be running: each TCP
// connection accepted afterwards, and each datagram relayed afterwards,
// is judged by f (nil: relay unchanged). A TCP connection keeps the
// Filter it was accepted under.
func (o *Observer) SetFilter(f Filter) { o.filterSet.Store(&filterBox{f}) }

// filter returns the Filter in force.
func (o *Observer) filter() Filter {
	if b := o.filterSet.Load(); b != nil {
		return b.f
	}
	return o.Filter
}

// RelayTCP starts a relay on 127.0.0.1 (a free port) that forwards every
// connection to backend, and returns its address. role says what the
// relay fronts; a Filter sees it in each Flow. With a Filter, the relay
// reads each connection's first bytes (a whole ClientHello: see
// Filter.Stream) and asks Filter.Stream before it dials the backend, then
// does what the Verdict says; a RoleDo53 relay instead hands each DNS
// message, both ways, to Filter.Datagram.
func (o *Observer) RelayTCP(role Role, backend string) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("lab: relay for %s: %w", backend, err)
	}
	return o.serveTCP(ln, role, backend)
}

// RelayPair starts a TCP and a UDP relay on the same port number (as an
// HTTPS server with HTTP/3 listens), forwarding to the TCP and UDP
// backends, and returns the shared address. Both relays have the role.
func (o *Observer) RelayPair(role Role, tcpBackend, udpBackend string) (string, error) {
	var lastErr error
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", fmt.Errorf("lab: relay for %s: %w", tcpBackend, err)
		}
		pc, err := net.ListenPacket("udp", ln.Addr().String())
		if err != nil {
			ln.Close()
			lastErr = err
			continue
		}
		addr, err := o.serveTCP(ln, role, tcpBackend)
		if err != nil {
			pc.Close()
			return "", err
		}
		if _, err := o.serveUDP(pc, role, udpBackend); err != nil {
			return "", err
		}
		return addr, nil
	}
	return "", fmt.Errorf("lab: no port free for both TCP and UDP: %w", lastErr)
}

// Close stops every relay and waits for their goroutines.
func (o *Observer) Close() error {
	o.mu.Lock()
	o.closed = true
	relays := make([]io.Closer, 0, len(o.open))
	for _, c := range o.open {
		relays = append(relays, c)
	}
	o.open = nil
	o.mu.Unlock()
	var errs []error
	for _, r := range relays {
		if err := r.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	o.wg.Wait()
	return errors.Join(errs...)
}

// track registers c to be closed by Close and returns its id for untrack;
// it reports false (and closes c) when the observer is already closed.
func (o *Observer) track(c io.Closer) (uint64, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		c.Close()
		return 0, false
	}
	if o.open == nil {
		o.open = map[uint64]io.Closer{}
	}
	o.nextID++
	o.open[o.nextID] = c
	return o.nextID, true
}

// untrack forgets what track registered under id, once it has ended.
func (o *Observer) untrack(id uint64) {
	o.mu.Lock()
	delete(o.open, id)
	o.mu.Unlock()
}

// tables returns the number of entries in the observer's close table and
// in its UDP relays' session maps (for tests: both must shrink back once
// the traffic has ended).
func (o *Observer) tables() (open, sessions int) {
	o.mu.Lock()
	open = len(o.open)
	udp := append([]*udpRelay(nil), o.udp...)
	o.mu.Unlock()
	for _, r := range udp {
		r.mu.Lock()
		sessions += len(r.sessions)
		r.mu.Unlock()
	}
	return open, sessions
}

func (o *Observer) udpIdle() time.Duration {
	if o.UDPIdle > 0 {
		return o.UDPIdle
	}
	return UDPRelayIdle
}

func (o *Observer) serveTCP(ln net.Listener, role Role, backend string) (string, error) {
	if _, ok := o.track(ln); !ok {
		return "", fmt.Errorf("lab: relay for %s: %w", backend, net.ErrClosed)
	}
	relayAddr := addrPortOf(ln.Addr())
	o.mu.Lock()
	o.tcpLns = append(o.tcpLns, ln)
	o.mu.Unlock()
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		for {
			raw, err := ln.Accept()
			if err != nil {
				return
			}
			c := raw
			if o.WrapConn != nil {
				c = o.WrapConn(c)
			}
			id, ok := o.track(c)
			if !ok {
				return
			}
			f := o.filter()
			if f != nil {
				o.unjudged.Add(1)
			}
			o.wg.Add(1)
			go func() {
				defer o.wg.Done()
				defer o.untrack(id)
				if f == nil {
					o.relayTCP(c, backend)
					return
				}
				flow := Flow{Role: role, Proto: "tcp", Client: addrPortOf(raw.RemoteAddr()), Relay: relayAddr, Backend: backend}
				o.filterTCP(f, flow, raw, c, func() { o.unjudged.Add(-1) })
			}()
		}
	}()
	return ln.Addr().String(), nil
}

// addrPortOf returns a TCP or UDP address as a netip.AddrPort (IPv4 not
// mapped into IPv6), or the zero AddrPort for other kinds.
func addrPortOf(a net.Addr) netip.AddrPort {
	ap, _, ok := addrPort(a)
	if !ok {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// relayTCP copies bytes both ways between client and a fresh connection
// to backend, passing half-closes on, until both directions end.
func (o *Observer) relayTCP(client net.Conn, backend string) {
	up, err := o.dial("tcp", backend)
	if err != nil {
		client.Close()
		return
	}
	relay.Pipe(client, up, 0)
}
