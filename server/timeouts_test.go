package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/echlab/echlab/internal/timeout"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// dialTLS completes a TLS handshake with the server offering alpn.
func dialTLS(t *testing.T, addr, alpn string) *tls.Conn {
	t.Helper()
	cfg := clientTLS(t, "secret.lab.test", nil)
	cfg.NextProtos = []string{alpn}
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if got := c.ConnectionState().NegotiatedProtocol; got != alpn {
		t.Fatalf("ALPN %q, want %q", got, alpn)
	}
	return c
}

// waitServerClose reads c until the server closes it and checks that this
// happened between lo and hi after since. A client-side safety deadline
// tells "still open" apart from "closed".
func waitServerClose(t *testing.T, c net.Conn, since time.Time, lo, hi time.Duration) {
	t.Helper()
	c.SetReadDeadline(since.Add(hi))
	_, err := io.Copy(io.Discard, c)
	took := time.Since(since)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection still open after %v", took)
	}
	if took < lo {
		t.Fatalf("server closed the connection after %v, before the timeout (%v) (err %v)", took, lo, err)
	}
	t.Logf("closed by the server after %v (err %v)", took, err)
}

const (
	testTimeout = 300 * time.Millisecond
	testLong    = 10 * time.Second
	testLo      = 250 * time.Millisecond // generous: timers start a moment before the client's clock
	testHi      = 5 * time.Second
)

func TestIdleTimeoutHTTP1AfterRequest(t *testing.T) {
	s := startServer(t, Config{IdleTimeout: testTimeout, ReadTimeout: testLong})
	c := dialTLS(t, s.Addr(), "http/1.1")
	br := bufio.NewReader(c)
	io.WriteString(c, "GET /api/conn HTTP/1.1\r\nHost: secret.lab.test\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Close {
		t.Fatalf("status %d close %v", resp.StatusCode, resp.Close)
	}
	waitServerClose(t, c, time.Now(), testLo, testHi)
}

func TestIdleTimeoutHTTP2NoStreams(t *testing.T) {
	s := startServer(t, Config{IdleTimeout: testTimeout, ReadTimeout: testLong})
	c := dialTLS(t, s.Addr(), "h2")
	// The client preface and an empty SETTINGS frame; no stream follows.
	io.WriteString(c, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
	waitServerClose(t, c, time.Now(), testLo, testHi)
}

func TestIdleTimeoutNoRequestAfterHandshake(t *testing.T) {
	for _, alpn := range []string{"http/1.1", "h2"} {
		t.Run(alpn, func(t *testing.T) {
			// The read timeout is short too: an idle connection is not a
			// request whose headers are late.
			s := startServer(t, Config{IdleTimeout: 4 * testTimeout, ReadTimeout: testTimeout})
			c := dialTLS(t, s.Addr(), alpn)
			waitServerClose(t, c, time.Now(), 4*testLo, testHi)
		})
	}
}

func TestFirstRequestAfterIdleWaitIsServed(t *testing.T) {
	s := startServer(t, Config{IdleTimeout: 2 * time.Second, ReadTimeout: testTimeout})
	c := dialTLS(t, s.Addr(), "http/1.1")
	time.Sleep(3 * testTimeout) // idle, longer than the read timeout
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: secret.lab.test\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("request after %v idle: %v", 3*testTimeout, err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

func TestReadTimeoutSlowHeaders(t *testing.T) {
	s := startServer(t, Config{IdleTimeout: testLong, ReadTimeout: testTimeout})
	c := dialTLS(t, s.Addr(), "http/1.1")
	// Let the server finish its side of the handshake first: bytes that
	// arrive with the client's Finished are read ahead by crypto/tls,
	// unseen by startConn, and then bounded by the idle timeout instead.
	time.Sleep(testTimeout / 3)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: sec") // and nothing more
	waitServerClose(t, c, time.Now(), testLo, testHi)
}

func TestReadTimeoutSlowBody(t *testing.T) {
	s := startServer(t, Config{IdleTimeout: testLong, ReadTimeout: testTimeout})
	c := dialTLS(t, s.Addr(), "http/1.1")
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: secret.lab.test\r\nContent-Length: 1000\r\n\r\n0123456789")
	start := time.Now()
	tick := time.NewTicker(testTimeout / 10)
	defer tick.Stop()
	go func() { // dribble: one byte every 30 ms keeps the body coming but never done
		for range tick.C {
			if _, err := io.WriteString(c, "x"); err != nil {
				return
			}
		}
	}()
	waitServerClose(t, c, start, testLo, testHi)
}

// TestBodyTimeoutSparesLongHandlers checks that the body deadline goes once
// the body is read: a handler running past the read timeout keeps its
// context (http.Server.ReadTimeout would cancel it on HTTP/1.1).
func TestBodyTimeoutSparesLongHandlers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	h := timeout.Body(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		select {
		case <-r.Context().Done():
			done <- r.Context().Err()
		case <-time.After(3 * testTimeout):
			done <- nil
		}
		io.WriteString(w, "ok")
	}), testTimeout)
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	resp, err := http.Post("http://"+ln.Addr().String()+"/", "text/plain", strings.NewReader("body"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := <-done; err != nil {
		t.Fatalf("handler context ended after the body was read: %v", err)
	}
}

func TestIdleTimeoutHTTP3(t *testing.T) {
	s := startServer(t, Config{IdleTimeout: testTimeout, ReadTimeout: testLong, HTTP3: true})
	cfg := clientTLS(t, "secret.lab.test", nil)
	cfg.NextProtos = []string{http3.NextProtoH3}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := quic.DialAddr(ctx, s.UDPAddr(), cfg, &quic.Config{MaxIdleTimeout: testLong})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseWithError(0, "")
	start := time.Now()
	select {
	case <-conn.Context().Done():
	case <-time.After(testHi):
		t.Fatalf("HTTP/3 connection still open after %v", testHi)
	}
	if took := time.Since(start); took < testLo {
		t.Fatalf("closed after %v, before the idle timeout", took)
	} else {
		t.Logf("closed after %v: %v", took, context.Cause(conn.Context()))
	}
}
