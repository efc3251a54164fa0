package resolver

// The DoH listener: it accepts TCP connections, runs each TLS handshake on
// a goroutine of its own, then hands the connections that negotiated
// http/1.1 (or no ALPN) to the resolver's HTTP/1.1 server (doh_h1.go) and
// the others (h2, and HTTP/1.1 too with NetHTTP1) to net/http's Serve
// through Accept. net/http cannot do this split itself: its TLSNextProto
// never sees http/1.1.

import (
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"sync"
	"time"

	"github.com/echlab/echlab/internal/inflight"
)

// dohListener is the net.Listener net/http serves; it owns the TCP
// listener underneath.
type dohListener struct {
	ln       net.Listener
	conf     *tls.Config
	read     time.Duration // bounds the TLS handshake
	h1       *h1Server     // nil: net/http serves HTTP/1.1 too
	errorLog *log.Logger
	g        *inflight.Group

	ready chan net.Conn // handshaken connections for net/http
	done  chan struct{} // closed by Close
	once  sync.Once

	mu      sync.Mutex
	closed  bool
	shaking map[net.Conn]struct{} // connections in their TLS handshake
}

func newDoHListener(ln net.Listener, conf *tls.Config, read time.Duration, h1 *h1Server, errorLog *log.Logger, g *inflight.Group) *dohListener {
	l := &dohListener{ln: ln, conf: conf, read: read, h1: h1, errorLog: errorLog, g: g,
		ready: make(chan net.Conn), done: make(chan struct{}), shaking: map[net.Conn]struct{}{}}
	g.Go(l.acceptLoop)
	return l
}

// acceptLoop accepts connections until the listener closes; temporary
// errors (out of file descriptors) are retried with a growing delay, as
// net/http does.
func (l *dohListener) acceptLoop() {
	var delay time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if ne, ok := err.(interface{ Temporary() bool }); ok && ne.Temporary() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				l.errorLog.Printf("resolver: doh: accept: %v; retrying in %v", err, delay)
				t := time.NewTimer(delay)
				select {
				case <-t.C:
					continue
				case <-l.done:
					t.Stop()
					return
				}
			}
			l.Close()
			return
		}
		delay = 0
		tc := tls.Server(c, l.conf)
		if !l.track(tc, true) {
			c.Close()
			return
		}
		l.g.Go(func() { l.handshake(tc) })
	}
}

// track adds or removes a connection in its handshake; once closed it
// adds none and reports false.
func (l *dohListener) track(c net.Conn, add bool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if add {
		if l.closed {
			return false
		}
		l.shaking[c] = struct{}{}
		return true
	}
	delete(l.shaking, c)
	return !l.closed
}

// handshake runs the TLS handshake within the read timeout and routes
// the connection by its ALPN protocol.
func (l *dohListener) handshake(c *tls.Conn) {
	c.SetDeadline(time.Now().Add(l.read))
	err := c.Handshake()
	open := l.track(c, false)
	if err != nil || !open {
		if err != nil && open {
			l.rejectHandshake(c, err)
		}
		c.Close()
		return
	}
	c.SetDeadline(time.Time{})
	st := c.ConnectionState()
	if l.h1 != nil && (st.NegotiatedProtocol == "" || st.NegotiatedProtocol == "http/1.1") {
		l.h1.serveConn(c, &st)
		return
	}
	select {
	case l.ready <- c:
	case <-l.done:
		c.Close()
	}
}

// rejectHandshake logs a failed handshake; a client that spoke plain
// HTTP gets net/http's answer to it.
func (l *dohListener) rejectHandshake(c *tls.Conn, err error) {
	var re tls.RecordHeaderError
	if errors.As(err, &re) && re.Conn != nil && looksLikeHTTP(re.RecordHeader) {
		io.WriteString(re.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n") //nolint:errcheck // closed next
		re.Conn.Close()
		return
	}
	l.errorLog.Printf("resolver: doh: TLS handshake error from %s: %v", c.RemoteAddr(), err)
}

// looksLikeHTTP reports whether a TLS record header is the start of a
// plain HTTP request, as net/http tells.
func looksLikeHTTP(hdr [5]byte) bool {
	switch string(hdr[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO":
		return true
	}
	return false
}

// Accept returns the next connection net/http serves.
func (l *dohListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		select {
		case <-l.done: // closed meanwhile: net/http would not close it
			c.Close()
			return nil, net.ErrClosed
		default:
			return c, nil
		}
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close closes the TCP listener and the connections still in their
// handshake. It may be called more than once.
func (l *dohListener) Close() error {
	var err error
	l.once.Do(func() {
		l.mu.Lock()
		l.closed = true
		shaking := l.shaking
		l.shaking = nil
		l.mu.Unlock()
		close(l.done)
		err = l.ln.Close()
		for c := range shaking {
			c.Close()
		}
	})
	return err
}

// Addr returns the TCP address.
func (l *dohListener) Addr() net.Addr { return l.ln.Addr() }
