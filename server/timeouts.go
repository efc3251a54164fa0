package server

import (
	"io"
	"net"
	"net/http"
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

// bodyTimeout gives every request body d to arrive: the read deadline is
// set when the handler starts and cleared once the body is read to its
// end, so that net/http's background read cannot cancel a long handler
// (which http.Server.ReadTimeout would do on HTTP/1.1).
func bodyTimeout(h http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
			rc := http.NewResponseController(w)
			if rc.SetReadDeadline(time.Now().Add(d)) == nil {
				r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
			}
		}
		h.ServeHTTP(w, r)
	})
}

// deadlineBody clears the read deadline once the body is read.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	once sync.Once
}

// Read reads the body; at its end the deadline goes.
func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.once.Do(func() { b.rc.SetReadDeadline(time.Time{}) })
	}
	return n, err
}
