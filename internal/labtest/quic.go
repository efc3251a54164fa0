package labtest

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

// SentConn is a client's UDP socket that keeps a copy of each datagram it
// sends.
type SentConn struct {
	net.PacketConn
	mu   sync.Mutex
	sent [][]byte
}

// WriteTo sends b and keeps a copy.
func (c *SentConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	c.mu.Lock()
	c.sent = append(c.sent, bytes.Clone(b))
	c.mu.Unlock()
	return c.PacketConn.WriteTo(b, addr)
}

// Sent returns the datagrams sent so far, in order.
func (c *SentConn) Sent() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.sent)
}

// QUICServer serves conf (with ALPN doq) over quic-go on loopback until the
// test ends: it accepts every connection and holds it until the client
// closes it. With retry it sends a Retry before each handshake. qc may be
// nil.
func QUICServer(t testing.TB, conf *tls.Config, qc *quic.Config, retry bool) net.Addr {
	t.Helper()
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	tr := &quic.Transport{Conn: udp}
	if retry {
		tr.VerifySourceAddress = func(net.Addr) bool { return true }
	}
	conf = conf.Clone()
	conf.NextProtos = []string{"doq"}
	ln, err := tr.Listen(conf, qc)
	if err != nil {
		udp.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close(); tr.Close(); udp.Close() })
	go func() {
		for {
			c, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			go func() { <-c.Context().Done() }()
		}
	}()
	return udp.LocalAddr()
}

// QUICDial runs one quic-go handshake with cfg (with ALPN doq) to addr from
// a fresh loopback socket, within 5 s, and closes the connection. It
// returns the datagrams the client sent, the connection's TLS state and
// the dial's error. qc may be nil.
func QUICDial(t testing.TB, addr net.Addr, cfg *tls.Config, qc *quic.Config) ([][]byte, tls.ConnectionState, error) {
	t.Helper()
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	sc := &SentConn{PacketConn: udp}
	tr := &quic.Transport{Conn: sc}
	defer tr.Close()
	cfg = cfg.Clone()
	cfg.NextProtos = []string{"doq"}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := tr.Dial(ctx, addr, cfg, qc)
	var st tls.ConnectionState
	if err == nil {
		st = c.ConnectionState().TLS
		c.CloseWithError(0, "done")
	}
	return sc.Sent(), st, err
}
