package client

import (
	"net"
	"slices"
	"sync"

	"github.com/echlab/echlab/internal/quicinitial"
	"github.com/quic-go/quic-go"
)

// quic-go reads and writes an OOBCapablePacketConn with batched reads, ECN
// and GSO; a plain net.PacketConn would lose them.
var _ quic.OOBCapablePacketConn = (*helloPacketConn)(nil)

// helloPacketConn is the UDP socket of a QUIC fetch, reporting the random
// of each connection's ClientHello as the client's first Initial packets
// go out. It embeds the *net.UDPConn, so quic-go still sees a socket with
// ReadMsgUDP, WriteMsgUDP and SyscallConn and keeps its batched reads, ECN
// and GSO; only the two write paths quic-go uses are looked through.
//
// Initials are read per Destination Connection ID (internal/quicinitial,
// the same code lab/observe decrypts captures with) until the first 38
// bytes of the ClientHello are in, usually the first datagram. A random is
// reported once: quic-go sends the same ClientHello again after a Retry,
// under a new DCID. Reports stop when the fetch ends (close), so none
// arrives after Fetch returns.
type helloPacketConn struct {
	*net.UDPConn
	report func(random []byte)

	mu       sync.Mutex
	conns    map[string]*quicinitial.Hello // by the Initials' DCID
	reported [][]byte
	closed   bool
}

// newHelloPacketConn wraps udp; report is called with each new random.
func newHelloPacketConn(udp *net.UDPConn, report func([]byte)) *helloPacketConn {
	return &helloPacketConn{UDPConn: udp, report: report, conns: map[string]*quicinitial.Hello{}}
}

// WriteTo is quic-go's write path for a socket without OOB support.
func (c *helloPacketConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	c.look(b)
	return c.UDPConn.WriteTo(b, addr)
}

// WriteMsgUDP is quic-go's write path for a UDP socket (ECN, GSO).
func (c *helloPacketConn) WriteMsgUDP(b, oob []byte, addr *net.UDPAddr) (n, oobn int, err error) {
	c.look(b)
	return c.UDPConn.WriteMsgUDP(b, oob, addr)
}

// look reads an outgoing datagram that starts with a long-header Initial
// packet. Other packets cost one byte comparison.
func (c *helloPacketConn) look(b []byte) {
	if len(b) == 0 || b[0]&0xc0 != 0xc0 {
		return // a short header, or not QUIC
	}
	h, err := quicinitial.ParseHeader(b)
	if err != nil || !h.Initial {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	q := c.conns[string(h.DCID)]
	if q == nil {
		q = new(quicinitial.Hello)
		c.conns[string(h.DCID)] = q
	}
	if q.Random() != nil {
		return // this connection's random is reported already
	}
	q.Add(b)
	r := q.Random()
	if r == nil || slices.ContainsFunc(c.reported, func(s []byte) bool { return slices.Equal(s, r) }) {
		return
	}
	c.reported = append(c.reported, r)
	c.report(r)
}

// close stops the reports: after it returns, report is not called again.
func (c *helloPacketConn) close() {
	c.mu.Lock()
	c.closed, c.conns = true, nil
	c.mu.Unlock()
}
