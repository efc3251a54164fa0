package resolver

import (
	"bufio"
	"bytes"
	"io"
	"log"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// memConn is a connection whose peer sent in and then closed its side;
// what the server writes collects in out.
type memConn struct {
	in     io.Reader
	out    bytes.Buffer
	writes int
}

func (c *memConn) Read(p []byte) (int, error)         { return c.in.Read(p) }
func (c *memConn) Write(p []byte) (int, error)        { c.writes++; return c.out.Write(p) }
func (c *memConn) Close() error                       { return nil }
func (c *memConn) LocalAddr() net.Addr                { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 443} }
func (c *memConn) RemoteAddr() net.Addr               { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5353} }
func (c *memConn) SetDeadline(t time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(t time.Time) error { return nil }

// FuzzDoHH1Conn feeds raw bytes to the HTTP/1.1 server as one
// connection's input: it must end (the input ends), never panic, and
// write only well-formed HTTP/1.x responses, as many as it read requests
// at most.
func FuzzDoHH1Conn(f *testing.F) {
	l := newLab(f)
	srv := newH1Server(newDoHHandler(l.h, DoHHandlerOptions{}), Timeouts{}.or(time.Minute, time.Minute), log.New(io.Discard, "", 0))
	q, _ := query("public.lab.test.", dns.TypeA, 1).Pack()
	get := "GET " + DoHPath + "?dns=" + b64url(q) + " HTTP/1.1\r\nHost: x\r\n\r\n"
	f.Add([]byte(get + get))
	f.Add([]byte("POST " + DoHPath + " HTTP/1.1\r\nHost: x\r\nContent-Type: " + mediaDNSMessage + "\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"5\r\n" + string(q[:5]) + "\r\n0\r\n\r\n" + get))
	f.Add([]byte("POST " + DoHPath + " HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc"))
	f.Add([]byte("HEAD /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" + get))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n"))
	f.Add([]byte("GARBAGE\r\n\r\n"))
	f.Add([]byte("GET /resolve?name=big.lab.test&type=TXT HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" + get))
	f.Fuzz(func(t *testing.T, in []byte) {
		c := &memConn{in: bytes.NewReader(in)}
		done := make(chan struct{})
		go func() {
			defer close(done)
			srv.serveConn(c, nil)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the server did not end with its input")
		}
		out := c.out.Bytes()
		if len(out) > 0 && !bytes.HasPrefix(out, []byte("HTTP/1.")) {
			t.Fatalf("output is not a response: %q", out)
		}
		if bytes.Contains(in, []byte("HEAD")) { // its responses cannot be framed without the requests
			return
		}
		br := bufio.NewReader(&c.out)
		bound := 2*bytes.Count(in, []byte("HTTP/1.")) + 1 // each request needs a version; 100 Continue comes first
		for n := 0; ; n++ {
			if _, err := br.Peek(1); err == io.EOF {
				break
			}
			if n >= bound {
				t.Fatalf("more than %d responses", bound)
			}
			resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
			if err != nil {
				t.Fatalf("response %d is malformed: %v\n%q", n, err, out)
			}
			if _, err := io.Copy(io.Discard, resp.Body); err != nil {
				t.Fatalf("response %d body: %v\n%q", n, err, out)
			}
		}
	})
}

// TestDoHH1ConnAllocs bounds the allocations the HTTP/1.1 server adds to
// a pipelined GET, around a handler that allocates nothing: those of
// http.ReadRequest (the request, its URL and header map, the strings of
// the request line and headers) and the request copy WithContext makes.
// Measured: 9.1, with the connection's buffers shared by 200 requests.
func TestDoHH1ConnAllocs(t *testing.T) {
	body := []byte("0123456789abcdef")
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hdr := w.Header()
		hdr["Content-Type"] = headerDNSMessage
		w.Write(body)
	})
	srv := newH1Server(h, Timeouts{}.or(time.Minute, time.Minute), log.New(io.Discard, "", 0))
	const n = 200
	batch := bytes.Repeat([]byte("GET "+DoHPath+"?dns=AAABAAABAAAAAAAAAWEDbGFiBHRlc3QAAAEAAQ HTTP/1.1\r\nHost: dns.lab.test\r\nAccept: "+mediaDNSMessage+"\r\n\r\n"), n)
	c := &memConn{}
	serve := func() {
		c.in = bytes.NewReader(batch)
		c.out.Reset()
		c.writes = 0
		srv.serveConn(c, nil)
	}
	serve()
	// The responses go out when the write buffer is full or the input
	// is all read, not one write each.
	maxWrites := c.out.Len()/h1BufferSize + 2
	if got := bytes.Count(c.out.Bytes(), []byte("HTTP/1.1 200 OK\r\n")); got != n || c.writes > maxWrites {
		t.Fatalf("%d answers in %d writes, want %d in at most %d", got, c.writes, n, maxWrites)
	}
	per := testing.AllocsPerRun(20, serve) / n
	t.Logf("%.2f allocations per pipelined request", per)
	if per > 10 {
		t.Errorf("%.2f allocations per request in the HTTP/1.1 server, want at most 10", per)
	}
}
