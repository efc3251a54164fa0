package resolver

// Tests of the resolver's own HTTP/2 server (doh_h2.go): the same
// answers as net/http's, flow control, bodies in pieces and trailers,
// the read and idle timeouts, graceful shutdown, PING and HEAD, all over
// real TLS connections on loopback.

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptrace"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2Client is a raw HTTP/2 client: frames written and read by hand.
type h2Client struct {
	t    *testing.T
	c    *tls.Conn
	fr   *http2.Framer
	hbuf bytes.Buffer
	enc  *hpack.Encoder
	dec  *hpack.Decoder
	got  []hpack.HeaderField // the last header block decoded
}

func dialH2(t *testing.T, l *lab, addr string, settings ...http2.Setting) *h2Client {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: l.ca.Pool(), ServerName: "dns.lab.test", NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("ALPN %q, want h2", p)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	hc := &h2Client{t: t, c: c, fr: http2.NewFramer(c, c)}
	hc.enc = hpack.NewEncoder(&hc.hbuf)
	hc.dec = hpack.NewDecoder(4096, func(f hpack.HeaderField) { hc.got = append(hc.got, f) })
	if err := hc.fr.WriteSettings(settings...); err != nil {
		t.Fatal(err)
	}
	return hc
}

// headers writes a request's HEADERS frame.
func (hc *h2Client) headers(sid uint32, method, path string, end bool, extra ...string) {
	hc.t.Helper()
	hc.hbuf.Reset()
	fields := append([]string{":method", method, ":scheme", "https", ":authority", "dns.lab.test", ":path", path}, extra...)
	for i := 0; i < len(fields); i += 2 {
		hc.enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	if err := hc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: sid, BlockFragment: hc.hbuf.Bytes(), EndHeaders: true, EndStream: end}); err != nil {
		hc.t.Fatal(err)
	}
}

// h2Response is what the client collected on one stream.
type h2Response struct {
	status  string
	header  map[string]string
	body    bytes.Buffer
	reset   http2.ErrCode
	wasRST  bool
	goAway  bool
	elapsed time.Duration
}

// read reads frames until stream sid ends (or is reset, or the server
// sends GOAWAY). onData, when set, sees each DATA frame of the stream.
func (hc *h2Client) read(sid uint32, onData func(*http2.DataFrame)) *h2Response {
	hc.t.Helper()
	start := time.Now()
	r := &h2Response{header: map[string]string{}}
	for {
		f, err := hc.fr.ReadFrame()
		if err != nil {
			hc.t.Fatalf("stream %d: %v", sid, err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				hc.fr.WriteSettingsAck()
			}
		case *http2.GoAwayFrame:
			r.goAway, r.elapsed = true, time.Since(start)
			return r
		case *http2.RSTStreamFrame:
			if f.StreamID == sid {
				r.wasRST, r.reset, r.elapsed = true, f.ErrCode, time.Since(start)
				return r
			}
		case *http2.HeadersFrame:
			if f.StreamID != sid {
				continue
			}
			hc.got = hc.got[:0]
			if _, err := hc.dec.Write(f.HeaderBlockFragment()); err != nil {
				hc.t.Fatal(err)
			}
			for _, h := range hc.got {
				if h.Name == ":status" {
					r.status = h.Value
				} else {
					r.header[h.Name] = h.Value
				}
			}
			if f.StreamEnded() {
				r.elapsed = time.Since(start)
				return r
			}
		case *http2.DataFrame:
			if f.StreamID != sid {
				continue
			}
			r.body.Write(f.Data())
			if onData != nil {
				onData(f)
			}
			if f.StreamEnded() {
				r.elapsed = time.Since(start)
				return r
			}
		}
	}
}

func getPath(t *testing.T, name string, qtype uint16) string {
	return DoHPath + "?dns=" + base64.RawURLEncoding.EncodeToString(packed(t, query(name, qtype, 0)))
}

// TestDoHH2MatchesNetHTTP sends the same requests to the resolver's
// HTTP/2 server and to net/http's (NetHTTP2) and wants the same status,
// headers (but Date) and body from both, over HTTP/2, and the requests
// served by our server on one kept connection.
func TestDoHH2MatchesNetHTTP(t *testing.T) {
	l := newLab(t)
	opts := DoHOptions{TLSListenerOptions: l.tlsOpts(), DoHHandlerOptions: DoHHandlerOptions{AltSvc: `h3=":443"`}}
	ours, err := StartDoH(l.h, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer ours.Close()
	opts.NetHTTP2 = true
	std, err := StartDoH(l.h, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer std.Close()
	if ours.h2 == nil || std.h2 != nil {
		t.Fatal("NetHTTP2 does not choose the HTTP/2 server")
	}
	wire := packed(t, query("public.lab.test.", dns.TypeA, 0))
	padded := query("secret.lab.test.", dns.TypeHTTPS, 0)
	if err := padQuery(padded); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		method, path, ctype, accept string
		body                        []byte
	}{
		{"GET", getPath(t, "public.lab.test.", dns.TypeA), "", "", nil},
		{"GET", DoHPath + "?dns=" + base64.RawURLEncoding.EncodeToString(packed(t, padded)), "", "", nil},
		{"GET", getPath(t, "nope.lab.test.", dns.TypeA), "", "", nil},
		{"GET", getPath(t, "big.lab.test.", dns.TypeTXT), "", "", nil},
		{"POST", DoHPath, mediaDNSMessage, "", wire},
		{"POST", DoHPath, "text/plain", "", wire},
		{"POST", DoHPath, mediaDNSMessage, "", make([]byte, 70000)},
		{"GET", DoHPath + "?dns=!!!", "", "", nil},
		{"GET", DoHPath, "", "", nil},
		{"PUT", DoHPath, mediaDNSMessage, "", wire},
		{"GET", "/elsewhere", "", "", nil},
		{"GET", DoHPath + "?name=public.lab.test&type=A", "", "", nil},
		{"GET", ResolvePath + "?name=big.lab.test&type=TXT", "", "", nil},
		{"GET", getPath(t, "public.lab.test.", dns.TypeA), "", mediaDNSJSON, nil},
		{"HEAD", getPath(t, "public.lab.test.", dns.TypeA), "", "", nil},
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: l.ca.Pool(), ServerName: "dns.lab.test"}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	do := func(base string, i int) (*http.Response, []byte, bool) {
		c := cases[i]
		req, _ := http.NewRequest(c.method, base+c.path, bytes.NewReader(c.body))
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
		if resp.ProtoMajor != 2 {
			t.Fatalf("%s %s over %s, want HTTP/2", c.method, c.path, resp.Proto)
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
		if a.Header.Get("Content-Length") == "" && b.Header.Get("Content-Length") != "" && a.ContentLength == b.ContentLength {
			a.Header.Set("Content-Length", b.Header.Get("Content-Length")) // the client moved it to ContentLength
		}
		if got, want := headerString(a.Header), headerString(b.Header); got != want {
			t.Errorf("%s: headers\nours     %s\nnet/http %s", name, got, want)
		}
		if a.ContentLength != b.ContentLength {
			t.Errorf("%s: Content-Length ours %d, net/http %d", name, a.ContentLength, b.ContentLength)
		}
	}
	ours.h2.mu.Lock()
	n := len(ours.h2.conns)
	ours.h2.mu.Unlock()
	if n != 1 {
		t.Errorf("our HTTP/2 server holds %d connections, want the client's 1", n)
	}
}

func trim(b []byte) []byte {
	if len(b) > 80 {
		return b[:80]
	}
	return b
}

func headerString(h http.Header) string {
	var b strings.Builder
	for _, k := range sortedKeys(h) {
		b.WriteString(k + "=" + strings.Join(h[k], ",") + "; ")
	}
	return b.String()
}

func sortedKeys(h http.Header) []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	for i := range keys { // a few keys: insertion sort
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}

// TestDoHH2FlowControl asks for a 1.3 KB answer with a stream window of
// 100 octets: the server must send no more than the window allows, and
// the rest after each WINDOW_UPDATE, until the whole answer is there.
func TestDoHH2FlowControl(t *testing.T) {
	l := newLab(t)
	s, _ := startDoH(t, l, DoHOptions{TLSListenerOptions: l.tlsOpts()})
	const window = 100
	hc := dialH2(t, l, s.Addr().String(), http2.Setting{ID: http2.SettingInitialWindowSize, Val: window})
	hc.headers(1, "GET", getPath(t, "big.lab.test.", dns.TypeTXT), true)
	credit, frames := window, 0
	r := hc.read(1, func(f *http2.DataFrame) {
		frames++
		credit -= len(f.Data())
		if credit < 0 {
			t.Fatalf("server sent %d octets past the stream window", -credit)
		}
		if credit == 0 && !f.StreamEnded() {
			hc.fr.WriteWindowUpdate(1, window)
			credit += window
		}
	})
	if r.status != "200" || r.wasRST || r.goAway {
		t.Fatalf("status %q reset %v goaway %v", r.status, r.wasRST, r.goAway)
	}
	var m dns.Msg
	if err := m.Unpack(r.body.Bytes()); err != nil || len(m.Answer) != 30 {
		t.Fatalf("answer of %d octets: %v, %d records", r.body.Len(), err, len(m.Answer))
	}
	if frames < r.body.Len()/window {
		t.Errorf("%d DATA frames for %d octets with a window of %d", frames, r.body.Len(), window)
	}
	if r.header["content-length"] != strconv.Itoa(r.body.Len()) {
		t.Errorf("content-length %q for %d octets", r.header["content-length"], r.body.Len())
	}
}

// TestDoHH2BodyInPieces posts a query in three DATA frames, and another
// whose body ends with trailers: both are answered.
func TestDoHH2BodyInPieces(t *testing.T) {
	l := newLab(t)
	s, _ := startDoH(t, l, DoHOptions{TLSListenerOptions: l.tlsOpts()})
	hc := dialH2(t, l, s.Addr().String())
	wire := packed(t, query("public.lab.test.", dns.TypeA, 0x1234))
	// Stream ids must increase (RFC 9113 section 5.1.1): stream 1 first.
	for _, tc := range []struct {
		sid      uint32
		trailers bool
	}{{1, false}, {3, true}} {
		sid, trailers := tc.sid, tc.trailers
		hc.headers(sid, "POST", DoHPath, false, "content-type", mediaDNSMessage)
		hc.fr.WriteData(sid, false, wire[:5])
		hc.fr.WriteData(sid, false, wire[5:9])
		hc.fr.WriteData(sid, !trailers, wire[9:])
		if trailers {
			hc.hbuf.Reset()
			hc.enc.WriteField(hpack.HeaderField{Name: "x-trailer", Value: "1"})
			hc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: sid, BlockFragment: hc.hbuf.Bytes(), EndHeaders: true, EndStream: true})
		}
		r := hc.read(sid, nil)
		var m dns.Msg
		if err := m.Unpack(r.body.Bytes()); r.status != "200" || err != nil || m.Id != 0x1234 || len(m.Answer) != 1 {
			t.Errorf("stream %d (trailers %v): status %q, %v, answer %v", sid, trailers, r.status, err, &m)
		}
	}
}

// TestDoHH2SlowBodyIsReset: a POST whose body stops coming is reset
// after the read timeout (RST_STREAM CANCEL), and the connection goes on
// serving other streams.
func TestDoHH2SlowBodyIsReset(t *testing.T) {
	l := newLab(t)
	s := startTestDoH(t, l, Timeouts{Idle: toLong, Read: toShort})
	hc := dialH2(t, l, s.Addr().String())
	hc.headers(1, "POST", DoHPath, false, "content-type", mediaDNSMessage)
	hc.fr.WriteData(1, false, []byte{0, 9})
	r := hc.read(1, nil)
	if !r.wasRST || r.reset != http2.ErrCodeCancel {
		t.Fatalf("stream 1: reset %v (%v) goaway %v status %q, want RST_STREAM CANCEL", r.wasRST, r.reset, r.goAway, r.status)
	}
	if r.elapsed < toLo || r.elapsed > toHi {
		t.Errorf("reset after %v, want about %v", r.elapsed, toShort)
	}
	hc.headers(3, "GET", getPath(t, "public.lab.test.", dns.TypeA), true)
	if r := hc.read(3, nil); r.status != "200" {
		t.Fatalf("after the reset: status %q reset %v goaway %v", r.status, r.wasRST, r.goAway)
	}
}

// TestDoHH2IdleTimeout: a connection with no stream open for the idle
// timeout gets GOAWAY and is closed.
func TestDoHH2IdleTimeout(t *testing.T) {
	l := newLab(t)
	s := startTestDoH(t, l, Timeouts{Idle: toShort, Read: toLong})
	hc := dialH2(t, l, s.Addr().String())
	hc.headers(1, "GET", getPath(t, "public.lab.test.", dns.TypeA), true)
	if r := hc.read(1, nil); r.status != "200" {
		t.Fatalf("status %q", r.status)
	}
	start := time.Now()
	if r := hc.read(3, nil); !r.goAway {
		t.Fatal("no GOAWAY")
	}
	waitServerClose(t, hc.c, start, toLo, toHi)
}

// TestDoHH2Shutdown: Shutdown sends GOAWAY on an idle HTTP/2 connection,
// closes it and returns at once, without waiting for its context.
func TestDoHH2Shutdown(t *testing.T) {
	l := newLab(t)
	s, err := StartDoH(l.h, DoHOptions{TLSListenerOptions: l.tlsOpts()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	hc := dialH2(t, l, s.Addr().String())
	hc.headers(1, "GET", getPath(t, "public.lab.test.", dns.TypeA), true)
	if r := hc.read(1, nil); r.status != "200" {
		t.Fatalf("status %q", r.status)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Shutdown took %v with an idle connection", d)
	}
	if r := hc.read(3, nil); !r.goAway {
		t.Fatal("no GOAWAY")
	}
	hc.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, hc.c); err != nil && !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "reset") {
		t.Errorf("connection not closed: %v", err)
	}
}

// TestDoHH2PingHeadAndErrors: PING is answered, HEAD gets the headers of
// the handler's answer (405) and no body, and DATA on a stream never
// opened is a connection error.
func TestDoHH2PingHeadAndErrors(t *testing.T) {
	l := newLab(t)
	s, _ := startDoH(t, l, DoHOptions{TLSListenerOptions: l.tlsOpts()})
	hc := dialH2(t, l, s.Addr().String())
	data := [8]byte{1, 2, 3, 4, 5, 6, 7, 8}
	hc.fr.WritePing(false, data)
	for {
		f, err := hc.fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if p, ok := f.(*http2.PingFrame); ok {
			if !p.IsAck() || p.Data != data {
				t.Fatalf("PING answer %v %v", p.IsAck(), p.Data)
			}
			break
		}
	}
	hc.headers(1, "HEAD", getPath(t, "public.lab.test.", dns.TypeA), true)
	r := hc.read(1, nil) // DoH allows GET and POST only
	if r.status != "405" || r.body.Len() != 0 || r.header["allow"] != "GET, POST" || r.header["content-length"] == "" {
		t.Fatalf("HEAD: status %q, %d octets of body, headers %v", r.status, r.body.Len(), r.header)
	}
	hc.fr.WriteData(7, true, []byte("x"))
	if r := hc.read(7, nil); !r.goAway {
		t.Fatal("DATA on an idle stream: no GOAWAY")
	}
}

// TestDoHH2StalledWindowIdles: a client that opens a stream window of one
// octet and then gives no more credit and sends nothing is idle; its
// connection is closed after the idle timeout, not held for good by the
// response waiting for credit.
func TestDoHH2StalledWindowIdles(t *testing.T) {
	l := newLab(t)
	s := startTestDoH(t, l, Timeouts{Idle: toShort, Read: toLong})
	hc := dialH2(t, l, s.Addr().String(), http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1})
	hc.headers(1, "GET", getPath(t, "public.lab.test.", dns.TypeA), true)
	start := time.Now()
	r := hc.read(1, nil) // one octet of DATA, then GOAWAY
	if !r.goAway || r.body.Len() != 1 {
		t.Fatalf("got %d octets, GOAWAY %v", r.body.Len(), r.goAway)
	}
	waitServerClose(t, hc.c, start, toLo, toHi)
}

// TestDoHH2GarbledFrames writes seeds of well-formed frame sequences
// (requests, bodies in pieces, resets, window updates, a stream window of
// one octet) with random octets changed or cut short, after the HTTP/2
// preface, on real connections: the server must not panic, and must end
// every connection within its timeouts (100 ms here) once the bytes stop,
// whether the client then closes its side or not.
func TestDoHH2GarbledFrames(t *testing.T) {
	if testing.Short() {
		t.Skip("a few seconds")
	}
	var seeds [][]byte
	var buf bytes.Buffer
	fr := http2.NewFramer(&buf, nil)
	seed := func(write func()) {
		buf.Reset()
		write()
		seeds = append(seeds, bytes.Clone(buf.Bytes()))
	}
	block := func(fields ...string) []byte {
		var b bytes.Buffer
		e := hpack.NewEncoder(&b)
		for i := 0; i < len(fields); i += 2 {
			e.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
		}
		return b.Bytes()
	}
	q := packed(t, query("public.lab.test.", dns.TypeA, 0))
	get := block(":method", "GET", ":scheme", "https", ":authority", "x", ":path", DoHPath+"?dns="+base64.RawURLEncoding.EncodeToString(q))
	post := block(":method", "POST", ":scheme", "https", ":authority", "x", ":path", DoHPath, "content-type", mediaDNSMessage)
	seed(func() {
		fr.WriteSettings()
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: get, EndHeaders: true, EndStream: true})
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: get[:5], EndHeaders: false, EndStream: true})
		fr.WriteContinuation(3, true, get[5:])
		fr.WritePing(false, [8]byte{})
	})
	seed(func() {
		fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1})
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: post, EndHeaders: true})
		fr.WriteData(1, false, q[:3])
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: post, EndHeaders: true})
		fr.WriteData(3, true, q)
		fr.WriteWindowUpdate(3, 100)
		fr.WriteRSTStream(1, http2.ErrCodeCancel)
		fr.WriteWindowUpdate(0, 1<<20)
	})
	l := newLab(t)
	// The read timeout also bounds the TLS handshake: 100 ms was too short
	// for a handshake under -race on a loaded machine (the dial failed).
	s, err := StartDoH(l.h, DoHOptions{TLSListenerOptions: l.tlsOpts(), Timeouts: Timeouts{Idle: 100 * time.Millisecond, Read: 500 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	conf := &tls.Config{RootCAs: l.ca.Pool(), ServerName: "dns.lab.test", NextProtos: []string{"h2"}}
	rng := rand.New(rand.NewPCG(15, 8484))
	for i := range 160 {
		data := bytes.Clone(seeds[i%len(seeds)])
		for n := rng.IntN(4) + 1; n > 0; n-- {
			data[rng.IntN(len(data))] = byte(rng.IntN(256))
		}
		if rng.IntN(3) == 0 {
			data = data[:rng.IntN(len(data))]
		}
		c, err := tls.Dial("tcp", s.Addr().String(), conf)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(3 * time.Second))
		closeWrite := i%4 != 0
		go func() { // written while the answers are read, as a client does
			c.Write(append([]byte(http2.ClientPreface), data...))
			if closeWrite {
				c.CloseWrite()
			}
		}()
		if _, err := io.Copy(io.Discard, c); errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("input %d (close_notify %v): connection still open after 3 s: %x", i, closeWrite, data)
		}
		c.Close()
	}
}

// TestDoHH2RapidResetBounded: a client that opens streams and resets each
// one at once (the HTTP/2 "rapid reset" attack) cannot make the server run
// more handlers than its stream limit: a stream's slot is freed when its
// handler has answered, not when the peer resets it.
func TestDoHH2RapidResetBounded(t *testing.T) {
	l := newLab(t)
	release := make(chan struct{})
	var running, peak atomic.Int32
	slow := HandlerFunc(func(ctx context.Context, req *dns.Msg, meta Meta) *dns.Msg {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-release
		running.Add(-1)
		return l.h.Answer(ctx, req, meta)
	})
	s, err := StartDoH(slow, DoHOptions{TLSListenerOptions: l.tlsOpts()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	defer close(release)
	hc := dialH2(t, l, s.Addr().String())
	path := getPath(t, "public.lab.test.", dns.TypeA)
	const streams = 2000
	go func() { // read whatever the server sends, so that it never blocks on us
		for {
			if _, err := hc.fr.ReadFrame(); err != nil {
				return
			}
		}
	}()
	for i := range streams {
		sid := uint32(2*i + 1)
		hc.headers(sid, "GET", path, true)
		if err := hc.fr.WriteRSTStream(sid, http2.ErrCodeCancel); err != nil {
			t.Fatalf("stream %d: %v", sid, err)
		}
	}
	// Give the server time to dispatch what it accepted.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) && peak.Load() < h2MaxStreams {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	if p := peak.Load(); p > h2MaxStreams {
		t.Errorf("%d handlers ran at once after %d opened-and-reset streams; the limit is %d", p, streams, h2MaxStreams)
	} else {
		t.Logf("%d opened-and-reset streams: at most %d handlers at once (limit %d)", streams, p, h2MaxStreams)
	}
}
