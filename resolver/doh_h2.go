package resolver

// DoH over HTTP/2 served on golang.org/x/net/http2's Framer and hpack
// instead of net/http's HTTP/2 server, whose per-stream goroutines,
// channel hand-offs and header maps cost three times what answering the
// query does. The same http.Handler (the DoH handler behind the in-flight
// counter) answers each request, so behaviour stays that of the net/http
// path: RFC 8484 GET and POST, the JSON format, errors, padding, headers.
// One reader goroutine per connection reads frames and starts one
// goroutine per request; one writer goroutine encodes the responses
// (hpack state follows the order frames are written), applies the peer's
// flow control, and flushes once per batch.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Limits of the HTTP/2 server.
const (
	h2MaxStreams     = 250     // SETTINGS_MAX_CONCURRENT_STREAMS, as net/http
	h2MaxHeaderList  = 1 << 20 // SETTINGS_MAX_HEADER_LIST_SIZE, net/http's DefaultMaxHeaderBytes
	h2DefaultWindow  = 65535   // the initial flow-control windows (RFC 9113 section 6.9.2)
	h2MaxWindow      = 1<<31 - 1
	h2BufferSize     = 16 << 10 // bufio sizes: one TLS record's worth
	h2TeardownWrites = time.Second
)

// h2Server serves HTTP/2 connections handed over by net/http (through
// TLSNextProto) after a TLS handshake that negotiated h2.
type h2Server struct {
	handler  http.Handler
	timeouts Timeouts
	errorLog *log.Logger

	mu       sync.Mutex
	conns    map[*h2Conn]struct{}
	shutdown bool
}

func newH2Server(h http.Handler, t Timeouts, errorLog *log.Logger) *h2Server {
	return &h2Server{handler: h, timeouts: t, errorLog: errorLog, conns: map[*h2Conn]struct{}{}}
}

// startShutdown sends GOAWAY on every connection; each closes once its
// last stream is answered. Registered with http.Server.RegisterOnShutdown.
func (s *h2Server) startShutdown() {
	s.mu.Lock()
	s.shutdown = true
	conns := make([]*h2Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.goAway()
	}
}

// h2Conn is one HTTP/2 connection.
type h2Conn struct {
	srv    *h2Server
	conn   *tls.Conn
	ctx    context.Context
	cancel context.CancelFunc
	fr     *http2.Framer // reads, on the reader goroutine only
	w      *h2Writer
	tls    *tls.ConnectionState
	remote string

	lastID  uint32         // the highest client stream ID seen
	work    chan h2Job     // to the idle workers
	handles sync.WaitGroup // the workers

	mu       sync.Mutex        // guards what follows, shared with the writer and timers
	bodies   map[uint32]*h2Req // streams still receiving their body
	active   int               // streams opened and not yet answered
	draining bool              // GOAWAY sent: close when active reaches 0
	closed   bool
}

// h2Req is a request whose body is still arriving.
type h2Req struct {
	id    uint32
	req   *http.Request
	body  bytes.Buffer
	timer *time.Timer // the read timeout of the body
	over  bool        // the body passed maxMessage+1 and was dispatched already
}

// serveConn serves c until the peer goes away, a timeout or a protocol
// error ends it, or the server closes it. It returns after every request
// goroutine and the writer have ended.
func (s *h2Server) serveConn(c *tls.Conn) {
	ctx, cancel := context.WithCancel(context.Background())
	st := c.ConnectionState()
	hc := &h2Conn{srv: s, conn: c, ctx: ctx, cancel: cancel, tls: &st, remote: c.RemoteAddr().String(),
		bodies: map[uint32]*h2Req{}, work: make(chan h2Job)}
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		cancel()
		return
	}
	s.conns[hc] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, hc)
		s.mu.Unlock()
	}()
	hc.serve()
}

func (hc *h2Conn) serve() {
	br := bufio.NewReaderSize(hc.conn, h2BufferSize)
	bw := bufio.NewWriterSize(hc.conn, h2BufferSize)
	hc.fr = http2.NewFramer(nil, br)
	hc.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	hc.fr.MaxHeaderListSize = h2MaxHeaderList
	hc.w = newH2Writer(hc, bw)
	go hc.w.run()
	defer hc.teardown()

	hc.conn.SetReadDeadline(time.Now().Add(hc.srv.timeouts.Read))
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(br, preface); err != nil || string(preface) != http2.ClientPreface {
		return
	}
	hc.w.send(h2Item{kind: h2ItemServerSettings})
	hc.setIdleDeadline()
	for {
		f, err := hc.fr.ReadFrame()
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) {
				hc.resetStream(se.StreamID, se.Code)
				continue
			}
			var ce http2.ConnectionError
			if errors.As(err, &ce) {
				hc.w.send(h2Item{kind: h2ItemGoAway, code: http2.ErrCode(ce), stream: hc.lastID})
			} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
				hc.w.send(h2Item{kind: h2ItemGoAway, code: http2.ErrCodeNo, stream: hc.lastID})
			}
			return
		}
		if err := hc.handleFrame(f); err != nil {
			var ce http2.ConnectionError
			if errors.As(err, &ce) {
				hc.w.send(h2Item{kind: h2ItemGoAway, code: http2.ErrCode(ce), stream: hc.lastID})
			}
			return
		}
	}
}

// teardown ends the connection: request contexts are cancelled, the
// workers and then the writer are waited for, and the connection is
// closed. The writer gets a short write deadline first, so that a peer
// that does not read cannot hold it, nor the workers queued behind it.
func (hc *h2Conn) teardown() {
	hc.mu.Lock()
	hc.closed = true
	for id, s := range hc.bodies { // bodies that will never end
		s.timer.Stop()
		delete(hc.bodies, id)
	}
	hc.mu.Unlock()
	hc.cancel()
	hc.conn.SetWriteDeadline(time.Now().Add(h2TeardownWrites))
	hc.handles.Wait()
	hc.w.stop()
	hc.conn.Close()
}

func (hc *h2Conn) handleFrame(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.MetaHeadersFrame:
		return hc.handleHeaders(f)
	case *http2.DataFrame:
		return hc.handleData(f)
	case *http2.SettingsFrame:
		if f.IsAck() {
			return nil
		}
		if err := f.ForeachSetting(func(s http2.Setting) error { return s.Valid() }); err != nil {
			return err
		}
		var settings []http2.Setting
		f.ForeachSetting(func(s http2.Setting) error { settings = append(settings, s); return nil }) //nolint:errcheck // never fails
		hc.w.send(h2Item{kind: h2ItemPeerSettings, settings: settings})
	case *http2.WindowUpdateFrame:
		hc.w.send(h2Item{kind: h2ItemWindow, stream: f.StreamID, n: f.Increment})
	case *http2.PingFrame:
		if !f.IsAck() {
			hc.w.send(h2Item{kind: h2ItemPing, ping: f.Data})
		}
	case *http2.RSTStreamFrame:
		if f.StreamID == 0 || f.StreamID > hc.lastID {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		if s := hc.removeBody(f.StreamID); s != nil {
			if !s.over { // never dispatched
				hc.streamDone()
			}
			return nil
		}
		hc.w.send(h2Item{kind: h2ItemPeerReset, stream: f.StreamID})
	case *http2.PushPromiseFrame: // clients must not push (RFC 9113 section 8.4)
		return http2.ConnectionError(http2.ErrCodeProtocol)
	case *http2.GoAwayFrame, *http2.PriorityFrame, *http2.UnknownFrame:
		// the peer leaves (it closes the connection next), priorities are
		// advisory, unknown frames are ignored (RFC 9113 section 4.1)
	}
	return nil
}

func (hc *h2Conn) handleHeaders(f *http2.MetaHeadersFrame) error {
	id := f.StreamID
	if s := hc.removeBody(id); s != nil { // trailers end the body
		if !f.StreamEnded() {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		if !s.over {
			hc.dispatch(s)
		}
		return nil
	}
	if id%2 == 0 || id <= hc.lastID {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	hc.lastID = id
	if f.Truncated {
		hc.resetStream(id, http2.ErrCodeProtocol) // header list too large
		return nil
	}
	hc.mu.Lock()
	refuse := hc.draining || hc.active >= h2MaxStreams
	if !refuse {
		hc.active++
		if hc.active == 1 {
			hc.conn.SetReadDeadline(time.Time{})
		}
	}
	hc.mu.Unlock()
	if refuse {
		hc.w.send(h2Item{kind: h2ItemReset, stream: id, code: http2.ErrCodeRefusedStream})
		return nil
	}
	req, err := hc.newRequest(f)
	if err != nil {
		hc.resetStream(id, http2.ErrCodeProtocol)
		hc.streamDone()
		return nil
	}
	s := &h2Req{id: id, req: req}
	if f.StreamEnded() {
		hc.dispatch(s)
		return nil
	}
	hc.mu.Lock()
	hc.bodies[id] = s
	s.timer = time.AfterFunc(hc.srv.timeouts.Read, func() { hc.expire(s) })
	hc.mu.Unlock()
	return nil
}

// body returns the stream still receiving its body, or nil.
func (hc *h2Conn) body(id uint32) *h2Req {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	return hc.bodies[id]
}

// removeBody forgets a stream whose body ended, or was cut off, and
// stops its timer. It returns nil if the stream was not receiving.
func (hc *h2Conn) removeBody(id uint32) *h2Req {
	hc.mu.Lock()
	s := hc.bodies[id]
	delete(hc.bodies, id)
	hc.mu.Unlock()
	if s != nil {
		s.timer.Stop()
	}
	return s
}

// expire cuts off a request whose body did not arrive within the read
// timeout: its stream is reset.
func (hc *h2Conn) expire(s *h2Req) {
	hc.mu.Lock()
	if hc.bodies[s.id] != s {
		hc.mu.Unlock()
		return
	}
	delete(hc.bodies, s.id)
	over := s.over
	hc.mu.Unlock()
	hc.w.send(h2Item{kind: h2ItemReset, stream: s.id, code: http2.ErrCodeCancel})
	if !over {
		hc.streamDone()
	}
}

func (hc *h2Conn) handleData(f *http2.DataFrame) error {
	id := f.StreamID
	if n := f.Length; n > 0 { // the connection window is given back at once
		hc.w.send(h2Item{kind: h2ItemWindowOut, n: n})
	}
	s := hc.body(id)
	if s == nil {
		if id == 0 || id > hc.lastID {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		hc.w.send(h2Item{kind: h2ItemReset, stream: id, code: http2.ErrCodeStreamClosed})
		return nil
	}
	if !s.over {
		s.body.Write(f.Data())
		if s.body.Len() > maxMessage { // the handler answers 413 from what it has
			hc.mu.Lock()
			s.over = true
			hc.mu.Unlock()
			hc.dispatchCopy(s)
		}
	}
	if f.StreamEnded() {
		if hc.removeBody(id) == s && !s.over {
			hc.dispatch(s)
		}
		return nil
	}
	if n := f.Length; n > 0 && !s.over {
		hc.w.send(h2Item{kind: h2ItemWindowOut, stream: id, n: n})
	}
	return nil
}

// newRequest makes the http.Request of a HEADERS frame, as net/http's
// HTTP/2 server would: pseudo-headers checked, header keys canonical.
func (hc *h2Conn) newRequest(f *http2.MetaHeadersFrame) (*http.Request, error) {
	var method, path, authority, scheme string
	hdr := make(http.Header, len(f.Fields))
	for _, hf := range f.Fields {
		switch hf.Name {
		case ":method":
			method = hf.Value
		case ":path":
			path = hf.Value
		case ":authority":
			authority = hf.Value
		case ":scheme":
			scheme = hf.Value
		default:
			if strings.HasPrefix(hf.Name, ":") {
				return nil, errors.New("unknown pseudo-header")
			}
			k := canonicalH2Header(hf.Name)
			hdr[k] = append(hdr[k], hf.Value)
		}
	}
	if method == "" || path == "" || scheme == "" || method == http.MethodConnect {
		return nil, errors.New("missing pseudo-header")
	}
	u, err := url.ParseRequestURI(path)
	if err != nil {
		return nil, err
	}
	if authority == "" {
		authority = hdr.Get("Host")
	}
	r := &http.Request{
		Method: method, URL: u, Proto: "HTTP/2.0", ProtoMajor: 2, Header: hdr, Body: http.NoBody,
		Host: authority, RemoteAddr: hc.remote, RequestURI: path, TLS: hc.tls, ContentLength: -1,
	}
	if cl := hdr.Get("Content-Length"); cl != "" {
		if n, err := strconv.ParseInt(cl, 10, 64); err == nil && n >= 0 {
			r.ContentLength = n
		}
	}
	return r.WithContext(hc.ctx), nil
}

// canonicalH2Header is http.CanonicalHeaderKey without its allocation for
// the request headers DoH clients send.
func canonicalH2Header(name string) string {
	switch name {
	case "accept":
		return "Accept"
	case "content-type":
		return "Content-Type"
	case "content-length":
		return "Content-Length"
	case "user-agent":
		return "User-Agent"
	case "accept-encoding":
		return "Accept-Encoding"
	}
	return http.CanonicalHeaderKey(name)
}

// dispatch runs the handler on a request whose body has all arrived.
func (hc *h2Conn) dispatch(s *h2Req) {
	if s.body.Len() > 0 {
		s.req.Body = io.NopCloser(&s.body)
		if s.req.ContentLength < 0 {
			s.req.ContentLength = int64(s.body.Len())
		}
	}
	hc.start(h2Job{id: s.id, req: s.req})
}

// h2Job is a request for a worker goroutine.
type h2Job struct {
	id         uint32
	req        *http.Request
	resetAfter bool
}

// start hands a request to an idle worker of the connection, or to a
// new one. Workers stay until the connection ends: a new goroutine per
// request would grow its stack again for each.
func (hc *h2Conn) start(j h2Job) {
	select {
	case hc.work <- j:
	default:
		hc.handles.Add(1)
		go hc.worker(j)
	}
}

func (hc *h2Conn) worker(j h2Job) {
	defer hc.handles.Done()
	for {
		hc.run(j.id, j.req, j.resetAfter)
		select {
		case j = <-hc.work:
		case <-hc.ctx.Done():
			return
		}
	}
}

// dispatchCopy runs the handler on what arrived of a body too large to
// answer (it replies 413); the rest of the body is discarded and the
// stream reset once the response is out.
func (hc *h2Conn) dispatchCopy(s *h2Req) {
	s.req.Body = io.NopCloser(bytes.NewReader(bytes.Clone(s.body.Bytes())))
	s.body = bytes.Buffer{}
	hc.start(h2Job{id: s.id, req: s.req, resetAfter: true})
}

// run answers one request and hands the response to the writer.
func (hc *h2Conn) run(id uint32, r *http.Request, resetAfter bool) {
	rw := getH2ResponseWriter()
	defer func() {
		if p := recover(); p != nil && p != http.ErrAbortHandler { //nolint:errorlint // as net/http compares it
			hc.srv.errorLog.Printf("resolver: doh: panic serving %s: %v", hc.remote, p)
			hc.w.send(h2Item{kind: h2ItemReset, stream: id, code: http2.ErrCodeInternal, done: true})
			putH2ResponseWriter(rw)
			return
		}
	}()
	hc.srv.handler.ServeHTTP(rw, r)
	if rw.status == 0 {
		rw.status = http.StatusOK
	}
	rw.head = r.Method == http.MethodHead
	hc.w.send(h2Item{kind: h2ItemResponse, stream: id, resp: rw, resetAfter: resetAfter})
}

// resetStream sends RST_STREAM and forgets a stream's pending body.
func (hc *h2Conn) resetStream(id uint32, code http2.ErrCode) {
	if s := hc.removeBody(id); s != nil && !s.over {
		hc.streamDone()
	}
	hc.w.send(h2Item{kind: h2ItemReset, stream: id, code: code})
}

// streamDone counts a stream as answered: with none left the idle
// timeout starts again, or a draining connection closes.
func (hc *h2Conn) streamDone() {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	hc.active--
	if hc.active > 0 || hc.closed {
		return
	}
	if hc.draining {
		hc.conn.SetReadDeadline(time.Now()) // the reader ends the connection
		return
	}
	hc.conn.SetReadDeadline(time.Now().Add(hc.srv.timeouts.Idle))
}

// setIdleDeadline starts the idle timeout when no stream is open.
func (hc *h2Conn) setIdleDeadline() {
	hc.mu.Lock()
	if hc.active == 0 {
		hc.conn.SetReadDeadline(time.Now().Add(hc.srv.timeouts.Idle))
	}
	hc.mu.Unlock()
}

// goAway starts a graceful close: GOAWAY now, the connection closed when
// the streams already open are answered.
func (hc *h2Conn) goAway() {
	hc.mu.Lock()
	if hc.draining || hc.closed {
		hc.mu.Unlock()
		return
	}
	hc.draining = true
	if hc.active == 0 {
		hc.conn.SetReadDeadline(time.Now())
	}
	hc.mu.Unlock()
	hc.w.send(h2Item{kind: h2ItemGoAway, code: http2.ErrCodeNo, stream: h2MaxWindow})
}
