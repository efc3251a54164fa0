package server

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/internal/quicinitial"
	"github.com/quic-go/quic-go"
	"golang.org/x/net/ipv4"
)

// Over QUIC the ClientHello travels in CRYPTO frames of the client's
// Initial packets, which quic-go reads and hands to crypto/tls: the
// callbacks see a ClientHelloInfo, never the message's bytes. Initial
// packets are protected with keys anyone can derive from the Destination
// Connection ID (RFC 9001 §5.2), so the HTTP/3 side reads them as its
// socket receives them (helloUDPConn) and keeps each connection's
// ClientHello facts by the client's address and that DCID (quicHellos). A
// connection picks its facts up through its address (quic-go's
// ConnContext) and the DCID quic-go names it by (its original one, given
// to quic.Config.Tracer). A QUIC record then says what a TCP one says: the
// config id and HPKE suite, GREASE apart from a rejected ECH, and the key
// the ClientHello names is tried first.

// minClientDCID is the shortest Destination Connection ID of a client's
// first Initial (RFC 9000 §7.2); quic-go's server refuses shorter ones.
// Its own connection IDs are 4 bytes long, and a client's Initials carry
// one once the server's first Initial reached it (§7.2), possibly before
// the last datagram of its ClientHello: the Initial keys do not change
// (RFC 9001 §5.2), so such an Initial goes to the hellos still being read
// from the same address.
const minClientDCID = 8

// maxQUICHellos bounds the ClientHellos being read or waiting for their
// connection, so that a flood of Initials under new DCIDs costs bounded
// memory (each at most quicinitial.MaxHelloDatagrams datagrams of at most
// quic-go's packet buffer). Past it, a new connection's record lacks the
// facts, as it did before the server read Initials.
const maxQUICHellos = 256

// helloUDPConn is the HTTP/3 side's UDP socket. quic-go reads a socket
// that has a ReadBatch method through that method (recvmmsg) and keeps
// ECN, GSO and packet info, as with the *net.UDPConn it embeds; ReadBatch
// also hands every datagram read to hellos before quic-go sees it.
type helloUDPConn struct {
	*net.UDPConn
	batch  *ipv4.PacketConn // what quic-go would read the socket with
	hellos *quicHellos
}

var _ quic.OOBCapablePacketConn = (*helloUDPConn)(nil)

func newHelloUDPConn(udp *net.UDPConn, hellos *quicHellos) *helloUDPConn {
	// ipv4.PacketConn reads IPv6 sockets too: quic-go uses it for both.
	return &helloUDPConn{UDPConn: udp, batch: ipv4.NewPacketConn(udp), hellos: hellos}
}

// ReadBatch reads datagrams as quic-go does, and looks at each.
func (c *helloUDPConn) ReadBatch(ms []ipv4.Message, flags int) (int, error) {
	n, err := c.batch.ReadBatch(ms, flags)
	for i := range n {
		if len(ms[i].Buffers) > 0 {
			c.hellos.add(ms[i].Buffers[0][:ms[i].N], ms[i].Addr)
		}
	}
	return n, err
}

// ReadFrom is quic-go's read path where it does not read in batches
// (Windows): it looks at each datagram too.
func (c *helloUDPConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, addr, err := c.UDPConn.ReadFrom(b)
	if n > 0 {
		c.hellos.add(b[:n], addr)
	}
	return n, addr, err
}

// quicHellos holds the ClientHellos read from client Initials, by the
// client's address and the Destination Connection ID of its first Initial:
// Initial keys are public, so a DCID alone would let anyone who saw it
// send a ClientHello under it first.
type quicHellos struct {
	ttl time.Duration // how long a hello waits for its connection
	now func() time.Time

	mu    sync.Mutex
	m     map[helloKey]*quicHello
	swept time.Time // when hellos older than ttl were last dropped
}

// helloKey names a connection's ClientHello: where it came from, and the
// DCID of the client's first Initial.
type helloKey struct {
	from netip.AddrPort
	dcid string
}

type quicHello struct {
	read  *quicinitial.Hello // nil once whole or given up
	facts *helloFacts        // the ClientHello's, once whole
	since time.Time
}

func newQUICHellos(ttl time.Duration, now func() time.Time) *quicHellos {
	return &quicHellos{ttl: ttl, now: now, m: map[helloKey]*quicHello{}}
}

// add reads one datagram a client sent from addr. Anything but a client's
// Initial costs a header check; bytes that do not parse are left to
// quic-go, which drops them.
func (q *quicHellos) add(b []byte, addr net.Addr) {
	if len(b) == 0 || b[0]&0xc0 != 0xc0 {
		return // a short header, or not QUIC
	}
	h, err := quicinitial.ParseHeader(b)
	if err != nil || !h.Initial {
		return
	}
	from := udpFrom(addr)
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(h.DCID) < minClientDCID {
		for k, e := range q.m {
			if e.read != nil && k.from == from {
				e.add(b)
			}
		}
		return
	}
	key := helloKey{from, string(h.DCID)}
	e := q.m[key]
	if e == nil {
		if now := q.now(); now.Sub(q.swept) > q.ttl {
			q.swept = now
			q.sweepLocked()
		}
		if len(q.m) >= maxQUICHellos {
			return
		}
		e = &quicHello{read: new(quicinitial.Hello), since: q.now()}
		q.m[key] = e
	}
	e.add(b)
}

// add reads one datagram into the hello, unless it is whole or given up.
func (e *quicHello) add(b []byte) {
	if e.read == nil {
		return
	}
	msg, ok, err := e.read.Add(b)
	switch {
	case ok:
		e.read = nil
		if ch, err := ech.ParseClientHello(msg); err == nil {
			f := factsOf(ch)
			e.facts = &f
		}
	case errors.Is(err, quicinitial.ErrGaveUp):
		e.read = nil
	}
}

// udpFrom is a UDP address as a map key (an IPv4 address in its 4-byte
// form, whatever the socket's family).
func udpFrom(a net.Addr) netip.AddrPort {
	ua, ok := a.(*net.UDPAddr)
	if !ok {
		return netip.AddrPort{}
	}
	ap := ua.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// sweepLocked drops the hellos older than ttl.
func (q *quicHellos) sweepLocked() {
	old := q.now().Add(-q.ttl)
	for k, e := range q.m {
		if e.since.Before(old) {
			delete(q.m, k)
		}
	}
}

// take returns, and forgets, the facts of the ClientHello read under key;
// false when none was read whole.
func (q *quicHellos) take(key helloKey) (helloFacts, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	e := q.m[key]
	if e == nil || e.facts == nil {
		return helloFacts{}, false
	}
	delete(q.m, key)
	return *e.facts, true
}

// forget drops what was read under key.
func (q *quicHellos) forget(key helloKey) {
	q.mu.Lock()
	delete(q.m, key)
	q.mu.Unlock()
}

// size is the number of hellos held.
func (q *quicHellos) size() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.m)
}
