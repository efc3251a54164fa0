package server

import (
	"net"
	"sync"
	"time"
)

// Default timeouts of Config.
const (
	// DefaultIdleTimeout is how long a connection may stay idle: after the
	// handshake before its first request, between requests, and (HTTP/2,
	// HTTP/3) with no stream open.
	DefaultIdleTimeout = 60 * time.Second
	// DefaultReadTimeout bounds reading a request's headers (from their
	// first byte) and then its body.
	DefaultReadTimeout = 10 * time.Second
)

// quicIdleGrace is how much longer than the HTTP/3 idle timeout the QUIC
// idle timeout is: the HTTP/3 layer closes an idle connection explicitly
// (H3_NO_ERROR), which the client learns at once, while QUIC's idle
// timeout drops a vanished peer silently and quic-go peers treat any
// value under 5 s as 5 s.
const quicIdleGrace = 5 * time.Second

// startConn sits under the tls.Conn of a TCP connection. From the end of
// the handshake until net/http reports the first request (or HTTP/2
// preface) read, it owns the read deadline: the connection may stay idle
// for the idle timeout, and once the first byte arrives the rest must come
// within the read timeout. net/http would otherwise give a connection
// that never sends anything its header timeout counted from the
// handshake, and HTTP/2 its fixed 10 s preface limit. Bytes that came
// with the client's Finished were read ahead by crypto/tls and are not
// seen here: if such a first request then stalls, it is bounded by the
// idle timeout rather than the read timeout.
type startConn struct {
	net.Conn

	mu      sync.Mutex
	waiting bool          // handshake done, first request not read yet
	gotByte bool          // a byte arrived while waiting
	idleEnd time.Time     // deadline while no byte arrived
	read    time.Duration // read timeout once a byte arrived
	want    time.Time     // the deadline net/http asked for while waiting
}

// arm starts the wait for the first request.
func (c *startConn) arm(idle, read time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waiting, c.read, c.idleEnd = true, read, time.Now().Add(idle)
	c.Conn.SetReadDeadline(c.idleEnd)
}

// activate hands the read deadline back to net/http (the first request
// was read, or the connection is gone).
func (c *startConn) activate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.waiting {
		c.waiting = false
		c.Conn.SetReadDeadline(c.want)
	}
}

// Read notes the first byte after the handshake.
func (c *startConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.mu.Lock()
		if c.waiting && !c.gotByte {
			c.gotByte = true
			c.Conn.SetReadDeadline(time.Now().Add(c.read))
		}
		c.mu.Unlock()
	}
	return n, err
}

// SetReadDeadline keeps the waiting deadline while waiting.
func (c *startConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.waiting {
		c.want = t
		return nil
	}
	return c.Conn.SetReadDeadline(t)
}

// SetDeadline sets both deadlines, the read one through SetReadDeadline.
func (c *startConn) SetDeadline(t time.Time) error {
	if err := c.Conn.SetWriteDeadline(t); err != nil {
		return err
	}
	return c.SetReadDeadline(t)
}
