package client

import (
	"net"
	"sync"
)

// Options.OnClientHello reports the random of every ClientHello the client
// writes. Over TCP it is read from the first TLS record written on each
// connection (helloConn, below), which covers crypto/tls's handshakes and
// the GREASE ClientHello alike; over QUIC from the client's own first
// Initial packet of each connection (helloPacketConn, hello_quic.go). The
// lab joins captured flows to its cases by this random: a connection
// attempt that dies before crypto/tls writes a key log line (a handshake
// timeout on one address, before the next) is on the wire all the same.

// helloConn is a TCP connection that reports the random of the ClientHello
// at the start of what is written on it, once, before writing it.
type helloConn struct {
	net.Conn
	report func(random []byte)
	mu     sync.Mutex
	first  []byte
	done   bool
}

// Write reports the random once the first helloPrefix bytes are in, then
// writes b.
func (c *helloConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	if !c.done {
		c.first = append(c.first, b[:min(helloPrefix-len(c.first), len(b))]...)
		if len(c.first) == helloPrefix {
			c.done = true
			if r := ClientHelloRandom(c.first); r != nil {
				c.report(r)
			}
		}
	}
	c.mu.Unlock()
	return c.Conn.Write(b)
}

// withHelloHook wraps a new TCP connection when OnClientHello is set.
func (f *fetcher) withHelloHook(conn net.Conn) net.Conn {
	if f.opts.OnClientHello == nil {
		return conn
	}
	return &helloConn{Conn: conn, report: f.opts.OnClientHello}
}
