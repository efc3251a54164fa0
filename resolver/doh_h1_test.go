package resolver

// Tests of the resolver's own HTTP/1.1 server (doh_h1.go): the same
// answers as net/http's, pipelining in one write, Connection: close,
// HTTP/1.0, malformed and oversized requests, chunked and 100-continue
// bodies, the timeouts and graceful shutdown, over real TLS connections
// on loopback (and a plain TCP one to count the server's writes).

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
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/echlab/echlab/internal/testutil"
	"github.com/miekg/dns"
)

// h1Get is a pipelinable GET request line and headers for a query.
func h1Get(t testing.TB, name string, id uint16) string {
	b, err := query(name, dns.TypeA, id).Pack()
	if err != nil {
		t.Fatal(err)
	}
	return "GET " + DoHPath + "?dns=" + b64url(b) + " HTTP/1.1\r\nHost: dns.lab.test\r\n\r\n"
}

// readH1 reads one response and its body.
func readH1(t *testing.T, br *bufio.Reader, method string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// answerID unpacks a DoH answer and returns its ID.
func answerID(t *testing.T, resp *http.Response, body []byte) uint16 {
	t.Helper()
	var m dns.Msg
	if err := m.Unpack(body); err != nil || resp.StatusCode != 200 {
		t.Fatalf("status %d, answer %v", resp.StatusCode, err)
	}
	return m.Id
}

// expectClosed checks that the server closes c within 5 s.
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the server kept the connection open")
	}
}

// TestDoHH1MatchesNetHTTP sends the same requests over HTTP/1.1 to the
// resolver's server and to net/http's (NetHTTP1) and wants the same
// status, headers (but Date) and body from both, and every request to our
// server on one kept connection. One difference is allowed: a body over
// 2 KiB without a length from the handler has Content-Length from ours
// (which holds the whole body), chunks from net/http.
func TestDoHH1MatchesNetHTTP(t *testing.T) {
	l := newLab(t)
	opts := DoHOptions{TLSListenerOptions: l.tlsOpts(), DoHHandlerOptions: DoHHandlerOptions{AltSvc: `h3=":443"`}}
	ours, err := StartDoH(l.h, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer ours.Close()
	opts.NetHTTP1 = true
	std, err := StartDoH(l.h, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer std.Close()
	if ours.h1 == nil || std.h1 != nil {
		t.Fatal("NetHTTP1 does not choose the HTTP/1.1 server")
	}
	wire := packed(t, query("public.lab.test.", dns.TypeA, 0))
	cases := []struct {
		method, path, ctype, accept string
		body                        []byte
		chunked                     bool
	}{
		{"GET", getPath(t, "public.lab.test.", dns.TypeA), "", "", nil, false},
		{"GET", getPath(t, "nope.lab.test.", dns.TypeA), "", "", nil, false},
		{"GET", getPath(t, "big.lab.test.", dns.TypeTXT), "", "", nil, false},
		{"POST", DoHPath, mediaDNSMessage, "", wire, false},
		{"POST", DoHPath, mediaDNSMessage, "", wire, true},
		{"POST", DoHPath, "text/plain", "", wire, false},
		{"POST", DoHPath, mediaDNSMessage, "", make([]byte, 70000), false},
		{"GET", DoHPath + "?dns=!!!", "", "", nil, false},
		{"GET", DoHPath, "", "", nil, false},
		{"PUT", DoHPath, mediaDNSMessage, "", wire, false},
		{"GET", "/elsewhere", "", "", nil, false},
		{"GET", DoHPath + "?name=public.lab.test&type=A", "", "", nil, false},
		{"GET", ResolvePath + "?name=big.lab.test&type=TXT", "", "", nil, false},
		{"GET", getPath(t, "public.lab.test.", dns.TypeA), "", mediaDNSJSON, nil, false},
		{"HEAD", getPath(t, "public.lab.test.", dns.TypeA), "", "", nil, false},
		{"GET", getPath(t, "public.lab.test.", dns.TypeA), "", "", nil, false},
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: l.ca.Pool(), ServerName: "dns.lab.test"}, Protocols: new(http.Protocols)}
	tr.Protocols.SetHTTP1(true)
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	do := func(base string, i int) (*http.Response, []byte, bool) {
		c := cases[i]
		var body io.Reader = bytes.NewReader(c.body)
		if c.chunked {
			body = io.MultiReader(bytes.NewReader(c.body[:3]), bytes.NewReader(c.body[3:])) // no length: chunked
		}
		req, _ := http.NewRequest(c.method, base+c.path, body)
		if c.body == nil {
			req.Body = nil
		}
		if c.ctype != "" {
			req.Header.Set("Content-Type", c.ctype)
		}
		if c.accept != "" {
			req.Header.Set("Accept", c.accept)
		}
		reused := false
		req = req.WithContext(httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
			GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused },
		}))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", c.method, c.path, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("%s %s: body: %v", c.method, c.path, err)
		}
		if resp.ProtoMajor != 1 || (c.chunked && req.ContentLength != 0) {
			t.Fatalf("%s %s over %s (length %d), want HTTP/1.1", c.method, c.path, resp.Proto, req.ContentLength)
		}
		return resp, b, reused
	}
	for i, c := range cases {
		a, ab, reused := do("https://"+ours.Addr().String(), i)
		b, bb, _ := do("https://"+std.Addr().String(), i)
		name := c.method + " " + c.path
		if len(name) > 60 {
			name = name[:60]
		}
		if i > 0 && !reused {
			t.Errorf("%s: a new connection to our server, want the kept one", name)
		}
		if a.StatusCode != b.StatusCode || !bytes.Equal(ab, bb) {
			t.Errorf("%s: ours %d %q, net/http %d %q", name, a.StatusCode, trim(ab), b.StatusCode, trim(bb))
		}
		a.Header.Del("Date")
		b.Header.Del("Date")
		if b.ContentLength < 0 && a.ContentLength == int64(len(ab)) {
			// net/http chunks a body over 2 KiB the handler gave no
			// length for; ours always has the whole body, so its length.
			a.Header.Del("Content-Length")
			a.ContentLength = -1
		}
		if got, want := headerString(a.Header), headerString(b.Header); got != want {
			t.Errorf("%s: headers\nours     %s\nnet/http %s", name, got, want)
		}
		if a.ContentLength != b.ContentLength || a.Close != b.Close {
			t.Errorf("%s: Content-Length ours %d, net/http %d; close ours %v, net/http %v", name, a.ContentLength, b.ContentLength, a.Close, b.Close)
		}
	}
	ours.h1.mu.Lock()
	n := len(ours.h1.conns)
	ours.h1.mu.Unlock()
	if n != 1 {
		t.Errorf("our HTTP/1.1 server holds %d connections, want the client's 1", n)
	}
}

// TestDoHH1Pipelining writes 40 requests in one write over TLS and wants
// 40 answers, in order.
func TestDoHH1Pipelining(t *testing.T) {
	l := newLab(t)
	s := startTestDoH(t, l, Timeouts{})
	c := dialDoH(t, l, s.Addr().String())
	var batch strings.Builder
	const n = 40
	for i := range n {
		batch.WriteString(h1Get(t, "public.lab.test.", uint16(i+1)))
	}
	if _, err := io.WriteString(c, batch.String()); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	for i := range n {
		resp, body := readH1(t, br, "GET")
		if id := answerID(t, resp, body); id != uint16(i+1) || resp.Close {
			t.Fatalf("answer %d has ID %d (close %v), want %d", i, id, resp.Close, i+1)
		}
	}
}

// countConn counts the writes on a connection.
type countConn struct {
	net.Conn
	writes atomic.Int32
}

func (c *countConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// TestDoHH1BatchesWrites serves a plain TCP connection with the HTTP/1.1
// server and counts its writes: 40 pipelined requests sent in one write
// get their 40 responses in a few writes, not one each as net/http's
// server flushes.
func TestDoHH1BatchesWrites(t *testing.T) {
	l := newLab(t)
	srv := newH1Server(newDoHHandler(l.h, DoHHandlerOptions{}), Timeouts{}.or(time.Minute, 10*time.Second), log.New(io.Discard, "", 0))
	cc := make(chan *countConn, 1)
	addr := testutil.ServeOnce(t, func(c net.Conn) {
		counted := &countConn{Conn: c}
		cc <- counted
		srv.serveConn(counted, nil)
	})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var batch strings.Builder
	const n = 40
	for i := range n {
		batch.WriteString(h1Get(t, "public.lab.test.", uint16(i)))
	}
	if _, err := io.WriteString(c, batch.String()); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	for i := range n {
		resp, body := readH1(t, br, "GET")
		if id := answerID(t, resp, body); id != uint16(i) {
			t.Fatalf("answer %d has ID %d", i, id)
		}
	}
	if w := (<-cc).writes.Load(); w > 3 {
		t.Errorf("%d writes for %d pipelined responses, want at most 3", w, n)
	}
}

// TestDoHH1ConnectionClose: a request with Connection: close is answered
// with Connection: close and the server closes the connection.
func TestDoHH1ConnectionClose(t *testing.T) {
	l := newLab(t)
	s := startTestDoH(t, l, Timeouts{})
	c := dialDoH(t, l, s.Addr().String())
	req := strings.Replace(h1Get(t, "public.lab.test.", 3), "\r\n\r\n", "\r\nConnection: close\r\n\r\n", 1)
	io.WriteString(c, req+h1Get(t, "public.lab.test.", 4)) // the second is never answered
	br := bufio.NewReader(c)
	resp, body := readH1(t, br, "GET")
	if answerID(t, resp, body) != 3 || !resp.Close { // Close: the header said close
		t.Fatal("the answer does not say Connection: close")
	}
	if rest, _ := io.ReadAll(br); len(rest) != 0 {
		t.Fatalf("after Connection: close the server sent %q", trim(rest))
	}
	expectClosed(t, c)
}

// TestDoHH1HTTP10: an HTTP/1.0 request gets an HTTP/1.0 answer and the
// connection closes, unless it asked for keep-alive: then the answer
// says keep-alive and a second request is served on the connection.
func TestDoHH1HTTP10(t *testing.T) {
	l := newLab(t)
	s := startTestDoH(t, l, Timeouts{})
	get10 := func(id uint16, extra string) string {
		return strings.Replace(h1Get(t, "public.lab.test.", id), "HTTP/1.1\r\nHost: dns.lab.test\r\n", "HTTP/1.0\r\n"+extra, 1)
	}
	c := dialDoH(t, l, s.Addr().String())
	io.WriteString(c, get10(1, ""))
	br := bufio.NewReader(c)
	resp, body := readH1(t, br, "GET")
	if answerID(t, resp, body) != 1 || resp.Proto != "HTTP/1.0" || resp.Header.Get("Connection") != "" {
		t.Fatalf("proto %s Connection %q", resp.Proto, resp.Header.Get("Connection"))
	}
	expectClosed(t, c)

	c = dialDoH(t, l, s.Addr().String())
	br = bufio.NewReader(c)
	for id := uint16(1); id <= 2; id++ {
		io.WriteString(c, get10(id, "Connection: keep-alive\r\n"))
		resp, body := readH1(t, br, "GET")
		if answerID(t, resp, body) != id || resp.Header.Get("Connection") != "keep-alive" || resp.ContentLength != int64(len(body)) {
			t.Fatalf("request %d: Connection %q length %d", id, resp.Header.Get("Connection"), resp.ContentLength)
		}
	}
}

// TestDoHH1BadRequests: malformed requests get net/http's error status
// and the connection closes.
func TestDoHH1BadRequests(t *testing.T) {
	l := newLab(t)
	s := startTestDoH(t, l, Timeouts{})
	huge := "GET " + DoHPath + " HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 1<<20+8192) + "\r\n\r\n"
	for _, tc := range []struct {
		name, req string
		status    int
	}{
		{"garbage request line", "GARBAGE\r\n\r\n", 400},
		{"HTTP/9.9", "GET / HTTP/9.9\r\nHost: x\r\n\r\n", 505},
		{"no Host", "GET " + DoHPath + " HTTP/1.1\r\n\r\n", 400},
		{"bad header line", "GET / HTTP/1.1\r\nHost: x\r\nno colon\r\n\r\n", 400},
		{"bad Content-Length", "POST " + DoHPath + " HTTP/1.1\r\nHost: x\r\nContent-Length: -3\r\n\r\n", 400},
		{"headers over 1 MiB", huge, 431},
		{"Expect other than 100-continue", "POST " + DoHPath + " HTTP/1.1\r\nHost: x\r\nExpect: tea\r\nContent-Length: 3\r\n\r\nabc", 417},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialDoH(t, l, s.Addr().String())
			go io.WriteString(c, tc.req) // the oversized one may not all be read
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			resp, _ := readH1(t, bufio.NewReader(c), "GET")
			if resp.StatusCode != tc.status || !resp.Close {
				t.Fatalf("status %d close %v, want %d and close", resp.StatusCode, resp.Close, tc.status)
			}
			expectClosed(t, c)
		})
	}
}

// TestDoHH1ChunkedAndContinue: a chunked POST body in three chunks, and a
// POST with Expect: 100-continue that sends its body only after the
// interim response, are answered.
func TestDoHH1ChunkedAndContinue(t *testing.T) {
	l := newLab(t)
	s := startTestDoH(t, l, Timeouts{})
	wire := packed(t, query("public.lab.test.", dns.TypeA, 7))
	c := dialDoH(t, l, s.Addr().String())
	br := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	chunk := func(b []byte) string { return strconv.FormatInt(int64(len(b)), 16) + "\r\n" + string(b) + "\r\n" }
	io.WriteString(c, "POST "+DoHPath+" HTTP/1.1\r\nHost: x\r\nContent-Type: "+mediaDNSMessage+"\r\nTransfer-Encoding: chunked\r\n\r\n"+
		chunk(wire[:2])+chunk(wire[2:10])+chunk(wire[10:])+"0\r\n\r\n")
	if resp, body := readH1(t, br, "POST"); answerID(t, resp, body) != 7 {
		t.Fatal("wrong answer to the chunked POST")
	}
	io.WriteString(c, "POST "+DoHPath+" HTTP/1.1\r\nHost: x\r\nContent-Type: "+mediaDNSMessage+
		"\r\nExpect: 100-continue\r\nContent-Length: "+strconv.Itoa(len(wire))+"\r\n\r\n")
	if resp, _ := readH1(t, br, "POST"); resp.StatusCode != http.StatusContinue {
		t.Fatalf("status %d before the body, want 100", resp.StatusCode)
	}
	c.Write(wire)
	if resp, body := readH1(t, br, "POST"); answerID(t, resp, body) != 7 || resp.Close {
		t.Fatal("wrong answer after 100 Continue")
	}
}

// TestDoHH1ReadTimeouts: a connection that sends nothing, and one whose
// request headers dribble in, are closed after the read timeout although
// the idle timeout is long.
func TestDoHH1ReadTimeouts(t *testing.T) {
	l := newLab(t)
	s := startTestDoH(t, l, Timeouts{Idle: toLong, Read: toShort})
	c := dialDoH(t, l, s.Addr().String())
	waitServerClose(t, c, time.Now(), toLo, toHi)

	c = dialDoH(t, l, s.Addr().String())
	io.WriteString(c, "GET "+DoHPath+" HTTP/1.1\r\nHost: x\r\n")
	start := time.Now()
	tick := time.NewTicker(toShort / 10)
	defer tick.Stop()
	go func() {
		for range tick.C {
			if _, err := io.WriteString(c, "X-A: b\r\n"); err != nil {
				return
			}
		}
	}()
	waitServerClose(t, c, start, toLo, toHi)
}

// gateHandler answers at once, but for slow.lab.test. only once released.
type gateHandler struct {
	*fixtureHandler
	entered, release chan struct{}
}

func (g *gateHandler) Answer(ctx context.Context, req *dns.Msg, m Meta) *dns.Msg {
	if req.Question[0].Name == "slow.lab.test." {
		g.entered <- struct{}{}
		<-g.release
	}
	return g.fixtureHandler.Answer(ctx, req, m)
}

// TestDoHH1Shutdown: Shutdown closes an idle connection at once, lets the
// request in progress finish (its answer says Connection: close, then
// the connection closes), and returns when it has.
func TestDoHH1Shutdown(t *testing.T) {
	l := newLab(t)
	h := &gateHandler{fixtureHandler: l.h, entered: make(chan struct{}, 1), release: make(chan struct{})}
	s, err := StartDoH(h, DoHOptions{TLSListenerOptions: l.tlsOpts()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	idle := dialDoH(t, l, s.Addr().String())
	io.WriteString(idle, h1Get(t, "public.lab.test.", 1))
	readH1(t, bufio.NewReader(idle), "GET")
	busy := dialDoH(t, l, s.Addr().String())
	io.WriteString(busy, h1Get(t, "slow.lab.test.", 2))
	<-h.entered
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- s.Shutdown(ctx)
	}()
	expectClosed(t, idle)
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) with a request in progress", err)
	default:
	}
	close(h.release)
	resp, body := readH1(t, bufio.NewReader(busy), "GET")
	if answerID(t, resp, body) != 2 || !resp.Close {
		t.Fatalf("answer in progress: close %v", resp.Close)
	}
	expectClosed(t, busy)
	select {
	case err := <-shut:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return once the request was answered")
	}
}

// TestDoHH1ShutdownDeadline: when Shutdown's context ends with a request
// stuck in the handler, the connection is closed (which cancels the
// request's context), and Shutdown returns the context's error after the
// handler and every goroutine of the server.
func TestDoHH1ShutdownDeadline(t *testing.T) {
	l := newLab(t)
	before := testutil.Goroutines()
	h := newSlowHandler()
	s, err := StartDoH(h, DoHOptions{TLSListenerOptions: l.tlsOpts()})
	if err != nil {
		t.Fatal(err)
	}
	busy := dialDoH(t, l, s.Addr().String())
	io.WriteString(busy, h1Get(t, "public.lab.test.", 1))
	dialDoH(t, l, s.Addr().String()) // idle
	h.waitEntered(t, 1)
	var got error
	closeAndCheck(t, before, h, 1, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		got = s.Shutdown(ctx)
		return got
	})
	if !errors.Is(got, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want the context's deadline", got)
	}
}

// TestDoHPlainHTTPOnTLSPort: a plain HTTP request to the DoH port gets
// net/http's 400 saying so, not a TLS alert.
func TestDoHPlainHTTPOnTLSPort(t *testing.T) {
	l := newLab(t)
	s := startTestDoH(t, l, Timeouts{})
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, h1Get(t, "public.lab.test.", 1))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, body := readH1(t, bufio.NewReader(c), "GET")
	if resp.StatusCode != 400 || !strings.Contains(string(body), "HTTPS server") {
		t.Fatalf("status %d %q", resp.StatusCode, body)
	}
}
