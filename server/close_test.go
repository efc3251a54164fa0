package server

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/echlab/echlab/internal/testutil"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// serverFrames name the goroutines of a server (and the net/http
// connection goroutines it owns); none may outlive Close.
var serverFrames = []string{"server.(*", "server.Start", "net/http.(*conn).serve", "net/http.(*http2serverConn)"}

// waitGoroutines waits until n goroutines not in before have match in
// their stack.
func waitGoroutines(t *testing.T, before map[string]string, match string, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := len(testutil.NewGoroutines(before, match))
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d goroutines %s", got, n, match)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// closeAndCheck calls close, which must return within 5 s, and then
// expects no goroutine of the server that was not in before. A goroutine
// that has signalled its end may still be unwinding: those get a second.
func closeAndCheck(t *testing.T, before map[string]string, closeFn func() error, atClose func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { closeFn(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return within 5 s")
	}
	atClose()
	left := testutil.NewGoroutines(before, serverFrames...)
	for deadline := time.Now().Add(time.Second); len(left) > 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		left = testutil.NewGoroutines(before, serverFrames...)
	}
	for _, g := range left {
		t.Errorf("goroutine left after Close:\n%s", g)
	}
}

// slowCloseConn is a transport that takes closeLag to report that it was
// closed, counting the reads in progress.
type slowCloseConn struct {
	net.Conn
	inRead *atomic.Int32
}

const closeLag = 200 * time.Millisecond

func (c *slowCloseConn) Read(p []byte) (int, error) {
	c.inRead.Add(1)
	defer c.inRead.Add(-1)
	n, err := c.Conn.Read(p)
	if err != nil {
		time.Sleep(closeLag)
	}
	return n, err
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func syncMapLen(m *sync.Map) int {
	n := 0
	m.Range(func(_, _ any) bool { n++; return true })
	return n
}

// TestServerCloseWaitsForConnections leaves connections at every stage
// (TCP mid-ClientHello, HTTP/1.1 and HTTP/2 mid-request, HTTP/3
// connections and a request stream) and closes the server: Close returns
// only after every connection's goroutine ended, which the records
// forgotten at StateClosed (and on the QUIC side at the connection's end)
// show right when Close returns.
func TestServerCloseWaitsForConnections(t *testing.T) {
	for _, tc := range []struct {
		name            string
		baseline, http3 bool
	}{{"shared", false, false}, {"baseline", true, false}, {"shared+http3", false, true}} {
		baseline, withH3 := tc.baseline, tc.http3
		t.Run(tc.name, func(t *testing.T) {
			before := testutil.Goroutines()
			key := newKey(t, 1)
			cfg := Config{CA: testCA(t), Keys: NewStaticKeys(key), HTTP3: withH3}
			start := Start
			if baseline {
				start = StartBaseline
			}
			s, err := start(cfg)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := net.Dial("tcp", s.Addr()) // half a ClientHello
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			raw.Write([]byte{0x16, 0x03, 0x01, 0x01, 0x00, 0x01})
			const conns = 10
			for i := range 2 * conns { // TLS done, half a request
				proto := []string{"http/1.1", "h2"}[i%2]
				c, err := tls.Dial("tcp", s.Addr(), &tls.Config{RootCAs: cfg.CA.Pool(), ServerName: s.PublicName(), NextProtos: []string{proto}})
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if proto == "h2" {
					io.WriteString(c, "PRI * HTTP/2.0\r\n\r\nSM\r\n")
				} else {
					io.WriteString(c, "GET / HTTP/1.1\r\nHo")
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			for range conns * btoi(withH3) { // HTTP/3 connections, one stream each with half a request
				qc, err := quic.DialAddr(ctx, s.UDPAddr(), &tls.Config{RootCAs: cfg.CA.Pool(), ServerName: s.PublicName(), NextProtos: []string{http3.NextProtoH3}}, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer qc.CloseWithError(0, "")
				str, err := qc.OpenStreamSync(ctx)
				if err != nil {
					t.Fatal(err)
				}
				str.Write([]byte{0x01, 0x40}) // HEADERS frame type, half a length
			}
			waitGoroutines(t, before, "server.(*Server).handshake", 1)
			waitGoroutines(t, before, "net/http.(*conn).serve", 2*conns)
			// Connections handed over with ServeConn (as the split front
			// does) over a transport slow to report its close.
			var inRead atomic.Int32
			for i := range conns {
				proto := []string{"http/1.1", "h2"}[i%2]
				client, server := net.Pipe()
				s.ServeConn(&slowCloseConn{Conn: server, inRead: &inRead})
				c := tls.Client(client, &tls.Config{RootCAs: cfg.CA.Pool(), ServerName: s.PublicName(), NextProtos: []string{proto}})
				if err := c.Handshake(); err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				go io.Copy(io.Discard, c) // net.Pipe has no buffer: take the server's writes
				if proto == "h2" {
					go io.WriteString(c, "PRI * HTTP/2.0\r\n\r\nSM\r\n")
				} else {
					go io.WriteString(c, "GET / HTTP/1.1\r\nHo")
				}
			}
			waitGoroutines(t, before, "net/http.(*conn).serve", 3*conns)
			if withH3 {
				waitGoroutines(t, before, "server.(*Server).logFailedQUIC", conns)
				for deadline := time.Now().Add(5 * time.Second); syncMapLen(&s.h3.recs) < conns; time.Sleep(10 * time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatal("the HTTP/3 connections were not accepted")
					}
				}
			}
			closeAndCheck(t, before, s.Close, func() {
				if n := inRead.Load(); n != 0 {
					t.Errorf("Close returned with %d connection reads still running", n)
				}
				if n := syncMapLen(&s.recs); n != 0 {
					t.Errorf("Close returned with %d TCP connections still being served", n)
				}
				if withH3 {
					if n := syncMapLen(&s.h3.recs); n != 0 {
						t.Errorf("Close returned with %d QUIC connections still being watched", n)
					}
				}
			})
		})
	}
}
