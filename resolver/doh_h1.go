package resolver

// DoH over HTTP/1.1 served on the resolver's own connection loop instead
// of net/http's server, whose per-request background-read goroutine,
// deadline resets and one write per response cost more than answering
// the query. Requests are parsed by net/http's own parser
// (http.ReadRequest: chunked bodies, header syntax) and answered by the
// same http.Handler (the DoH handler behind the in-flight counter), one
// at a time per connection as HTTP/1.1 wants. Responses go into a
// bufio.Writer that is flushed only when the connection is about to wait
// for more bytes: pipelined requests get their responses in one write.

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"time"
)

// Limits of the HTTP/1.1 server, those of net/http.
const (
	h1MaxHeaderBytes = http.DefaultMaxHeaderBytes + 4096 // as net/http's initialReadLimitSize
	h1MaxDiscard     = 256 << 10                         // an unread body left to skip, at most, to keep the connection
	h1BufferSize     = 16 << 10                          // bufio sizes: one TLS record's worth
	h1Linger         = 500 * time.Millisecond            // reading what the peer still sends before closing
)

// errH1Closing ends the wait for a request when the server shuts down.
var errH1Closing = errors.New("resolver: doh: server shutting down")

// h1Server serves HTTP/1.1 connections handed over by the DoH listener.
type h1Server struct {
	handler  http.Handler
	timeouts Timeouts
	errorLog *log.Logger

	mu       sync.Mutex
	conns    map[*h1Conn]struct{}
	shutdown bool // no new connections
	wg       sync.WaitGroup
}

func newH1Server(h http.Handler, t Timeouts, errorLog *log.Logger) *h1Server {
	return &h1Server{handler: h, timeouts: t, errorLog: errorLog, conns: map[*h1Conn]struct{}{}}
}

// serveConn serves c until the peer closes it, a timeout or a bad
// request ends it, or the server closes it.
func (s *h1Server) serveConn(c net.Conn, st *tls.ConnectionState) {
	ctx, cancel := context.WithCancel(context.Background())
	hc := &h1Conn{srv: s, conn: c, ctx: ctx, cancel: cancel, tls: st, remote: c.RemoteAddr().String(), limit: -1}
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		cancel()
		c.Close()
		return
	}
	s.conns[hc] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, hc)
		s.mu.Unlock()
		s.wg.Done()
	}()
	hc.serve()
}

// each calls f on every connection, after setting shutdown.
func (s *h1Server) each(f func(*h1Conn)) {
	s.mu.Lock()
	s.shutdown = true
	conns := make([]*h1Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		f(c)
	}
}

// startShutdown takes no new connections, closes the idle ones and
// makes the others close after the response in progress.
func (s *h1Server) startShutdown() { s.each((*h1Conn).shutdown) }

// close closes every connection, which cancels their requests' context.
func (s *h1Server) close() { s.each((*h1Conn).abort) }

// wait waits for the connections to end; if ctx ends first, it closes
// them, waits, and returns ctx's error.
func (s *h1Server) wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.close()
		<-done
		return ctx.Err()
	}
}

// h1Conn is one HTTP/1.1 connection. Everything but mu's fields belongs
// to the connection's goroutine, which also runs the handler.
type h1Conn struct {
	srv    *h1Server
	conn   net.Conn
	ctx    context.Context
	cancel context.CancelFunc
	tls    *tls.ConnectionState
	remote string
	br     *bufio.Reader // reads through Read below
	bw     *bufio.Writer
	rw     h1ResponseWriter

	wait     time.Duration // the deadline the next read from the network arms
	armed    bool          // a deadline is set for the current wait
	limit    int64         // octets the request's headers may still read; -1: no limit
	hitLimit bool
	date     string
	dateSec  int64

	mu      sync.Mutex
	idle    bool // waiting for a request's first octet
	closing bool // shutting down: close once idle
}

// Read feeds br: it flushes the responses written so far (the requests
// buffered are answered, so the peer must get them before we wait), arms
// the deadline of the current wait, and applies the header size limit.
func (hc *h1Conn) Read(p []byte) (int, error) {
	if hc.bw.Buffered() > 0 {
		if err := hc.bw.Flush(); err != nil {
			return 0, err
		}
	}
	if !hc.armed {
		hc.mu.Lock()
		if hc.idle && hc.closing {
			hc.mu.Unlock()
			return 0, errH1Closing
		}
		hc.conn.SetReadDeadline(time.Now().Add(hc.wait))
		hc.mu.Unlock()
		hc.armed = true
	}
	if hc.limit >= 0 {
		if hc.limit == 0 {
			hc.hitLimit = true
			return 0, io.EOF
		}
		if int64(len(p)) > hc.limit {
			p = p[:hc.limit]
		}
	}
	n, err := hc.conn.Read(p)
	if hc.limit >= 0 {
		hc.limit -= int64(n)
	}
	return n, err
}

func (hc *h1Conn) serve() {
	hc.br = bufio.NewReaderSize(hc, h1BufferSize)
	hc.bw = bufio.NewWriterSize(hc.conn, h1BufferSize)
	hc.rw.hc, hc.rw.hdr = hc, make(http.Header, 4)
	hc.wait = hc.srv.timeouts.Read // the first request, from the handshake
	linger := false
	defer func() { hc.teardown(linger) }()
	for {
		if hc.br.Buffered() == 0 {
			hc.setIdle(true)
			hc.armed = false
			_, err := hc.br.Peek(1)
			hc.setIdle(false)
			if err != nil {
				return
			}
		}
		hc.armed, hc.wait = false, hc.srv.timeouts.Read // the timer of a request starts when it makes us wait
		hc.limit, hc.hitLimit = h1MaxHeaderBytes, false
		req, err := http.ReadRequest(hc.br)
		hc.limit = -1
		if err != nil {
			linger = hc.rejectRequest(err)
			return
		}
		keep, clean := hc.handle(req)
		if !keep {
			linger = !clean || hc.br.Buffered() > 0
			return
		}
		hc.wait = hc.srv.timeouts.Idle
	}
}

func (hc *h1Conn) setIdle(idle bool) {
	hc.mu.Lock()
	hc.idle = idle
	hc.mu.Unlock()
}

// shutdown makes the connection close after its response, or now if it
// waits for a request.
func (hc *h1Conn) shutdown() {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	hc.closing = true
	if hc.idle {
		hc.conn.SetReadDeadline(time.Now())
	}
}

// abort closes the connection and cancels its requests' context.
func (hc *h1Conn) abort() {
	hc.cancel()
	hc.conn.Close()
}

// teardown flushes what is written and closes the connection. With
// linger, the peer may still be sending (a request we did not read to
// its end): closing at once could reset the connection before it reads
// our response, so its data is read and dropped for a moment first, as
// net/http's closeWriteAndWait waits.
func (hc *h1Conn) teardown(linger bool) {
	hc.cancel()
	hc.conn.SetWriteDeadline(time.Now().Add(h2TeardownWrites))
	if hc.bw.Flush() == nil && linger {
		if cw, ok := hc.conn.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		hc.conn.SetReadDeadline(time.Now().Add(h1Linger))
		io.CopyN(io.Discard, hc.conn, h1MaxDiscard) //nolint:errcheck // ends with the peer, a timeout or the limit
	}
	hc.conn.Close()
}
