package resolver

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

const (
	toShort = 300 * time.Millisecond
	toLong  = 10 * time.Second
	toLo    = 250 * time.Millisecond // generous: the server's timer starts a moment before ours
	toHi    = 5 * time.Second
)

// waitServerClose reads c until the server closes it and checks that this
// happened between lo and hi after since.
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
		t.Fatalf("server closed the connection after %v, before the timeout %v (err %v)", took, lo, err)
	}
	t.Logf("closed by the server after %v (err %v)", took, err)
}

// exchangeStream sends one framed query on c and reads the answer.
func exchangeStream(t *testing.T, c net.Conn) {
	t.Helper()
	b, err := query("public.lab.test.", dns.TypeA, 9).Pack()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(frame(b)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	msg, err := readFrame(c)
	if err != nil {
		t.Fatal(err)
	}
	var m dns.Msg
	if err := m.Unpack(msg); err != nil || m.Id != 9 {
		t.Fatalf("answer %v id %d", err, m.Id)
	}
}

func TestStreamIdleTimeout(t *testing.T) {
	l := newLab(t)
	tcp, err := startTCPTimeouts(l.h, "", Timeouts{Idle: toShort, Read: toLong})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tcp.Close() })
	dot, err := startDoTTimeouts(l.h, l.tlsOpts(), Timeouts{Idle: toShort, Read: toLong})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dot.Close() })
	dial := map[string]func() (net.Conn, error){
		"tcp": func() (net.Conn, error) { return net.Dial("tcp", tcp.Addr().String()) },
		"dot": func() (net.Conn, error) {
			return tls.Dial("tcp", dot.Addr().String(), &tls.Config{RootCAs: l.ca.Pool(), ServerName: "dns.lab.test"})
		},
	}
	for name, d := range dial {
		for _, asked := range []bool{false, true} {
			t.Run(name, func(t *testing.T) {
				c, err := d()
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if asked {
					exchangeStream(t, c)
				}
				waitServerClose(t, c, time.Now(), toLo, toHi)
			})
		}
	}
}

func TestStreamReadTimeout(t *testing.T) {
	l := newLab(t)
	tcp, err := startTCPTimeouts(l.h, "", Timeouts{Idle: toLong, Read: toShort})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tcp.Close() })
	c, err := net.Dial("tcp", tcp.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	exchangeStream(t, c) // a whole query is fine
	c.Write([]byte{0, 40, 0, 9})
	waitServerClose(t, c, time.Now(), toLo, toHi)
}

// startTestDoH starts DoH (HTTP/1.1 and HTTP/2) with timeouts.
func startTestDoH(t *testing.T, l *lab, to Timeouts) *DoHServer {
	t.Helper()
	s, err := StartDoH(l.h, DoHOptions{TLSListenerOptions: l.tlsOpts(), Timeouts: to})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func dialDoH(t *testing.T, l *lab, addr string) *tls.Conn {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: l.ca.Pool(), ServerName: "dns.lab.test", NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestDoHSlowPOSTIsCutOff(t *testing.T) {
	l := newLab(t)
	s := startTestDoH(t, l, Timeouts{Idle: toLong, Read: toShort})
	for _, stop := range []bool{false, true} {
		c := dialDoH(t, l, s.Addr().String())
		io.WriteString(c, "POST "+DoHPath+" HTTP/1.1\r\nHost: dns.lab.test\r\nContent-Type: "+mediaDNSMessage+
			"\r\nContent-Length: 100\r\n\r\n\x00\x09")
		start := time.Now()
		if !stop { // dribble a byte every 30 ms: the body keeps coming but never ends
			tick := time.NewTicker(toShort / 10)
			defer tick.Stop()
			go func() {
				for range tick.C {
					if _, err := c.Write([]byte{0}); err != nil {
						return
					}
				}
			}()
		}
		waitServerClose(t, c, start, toLo, toHi)
	}
}

func TestDoHIdleTimeoutAfterRequest(t *testing.T) {
	l := newLab(t)
	s := startTestDoH(t, l, Timeouts{Idle: toShort, Read: toLong})
	c := dialDoH(t, l, s.Addr().String())
	io.WriteString(c, "GET "+ResolvePath+"?name=public.lab.test&type=A HTTP/1.1\r\nHost: dns.lab.test\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != 200 || resp.Close {
		t.Fatalf("status %d close %v", resp.StatusCode, resp.Close)
	}
	waitServerClose(t, c, time.Now(), toLo, toHi)
}

func TestDoH3IdleTimeout(t *testing.T) {
	l := newLab(t)
	s, err := StartDoH3(l.h, DoHOptions{TLSListenerOptions: l.tlsOpts(), Timeouts: Timeouts{Idle: toShort}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conf := &tls.Config{RootCAs: l.ca.Pool(), ServerName: "dns.lab.test", NextProtos: []string{http3.NextProtoH3}}
	conn, err := quic.DialAddr(ctx, s.Addr().String(), conf, &quic.Config{MaxIdleTimeout: toLong})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseWithError(0, "")
	start := time.Now()
	select {
	case <-conn.Context().Done():
	case <-time.After(toHi):
		t.Fatalf("DoH3 connection still open after %v", toHi)
	}
	if took := time.Since(start); took < toLo {
		t.Fatalf("closed after %v, before the idle timeout", took)
	}
}

// TestConfigTimeoutsReachListeners starts a resolver from a JSON config
// file with idle_timeout and read_timeout and checks that Do53 over TCP,
// DoT, DoH and DoQ follow them.
func TestConfigTimeoutsReachListeners(t *testing.T) {
	dir := t.TempDir()
	zone := filepath.Join(dir, "lab.zone")
	os.WriteFile(zone, []byte("$ORIGIN lab.test.\n@ 60 IN SOA ns hostmaster 1 60 60 60 60\npublic 60 IN A 127.0.0.1\n"), 0o644)
	conf := filepath.Join(dir, "resolver.json")
	os.WriteFile(conf, []byte(`{"zones":[{"file":"`+zone+`"}],"tls":{"ca_dir":"`+filepath.Join(dir, "ca")+`"},
		"listen":{"tcp":"127.0.0.1:0","dot":"127.0.0.1:0","doh":"127.0.0.1:0","doq":"127.0.0.1:0"},
		"idle_timeout":"300ms","read_timeout":"300ms"}`), 0o644)
	cfg, err := LoadConfig(conf)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Start(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	pem, err := os.ReadFile(r.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	tlsConf := func(alpn string) *tls.Config {
		return &tls.Config{RootCAs: roots, ServerName: "resolver.lab.test", NextProtos: []string{alpn}}
	}
	t.Run("tcp", func(t *testing.T) {
		c, err := net.Dial("tcp", r.Addr(TransportTCP).String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		exchangeStream(t, c)
		waitServerClose(t, c, time.Now(), toLo, toHi)
	})
	t.Run("dot", func(t *testing.T) {
		c, err := tls.Dial("tcp", r.Addr(TransportDoT).String(), tlsConf("dot"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte{0}) // a query started and stalled: the read timeout
		waitServerClose(t, c, time.Now(), toLo, toHi)
	})
	t.Run("doh", func(t *testing.T) {
		c, err := tls.Dial("tcp", r.Addr(TransportDoH).String(), tlsConf("http/1.1"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		time.Sleep(toShort / 3)
		io.WriteString(c, "POST "+DoHPath+" HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n\x00")
		waitServerClose(t, c, time.Now(), toLo, toHi)
	})
	t.Run("doq", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, err := quic.DialAddr(ctx, r.Addr(TransportDoQ).String(), tlsConf(alpnDoQ), &quic.Config{MaxIdleTimeout: toLong})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.CloseWithError(0, "")
		// quic-go clients take a peer's idle timeout under 5 s as 5 s, so
		// the client notices the server's 300 ms only at 5 s, not at its
		// own 10 s.
		start := time.Now()
		select {
		case <-conn.Context().Done():
		case <-time.After(8 * time.Second):
			t.Fatal("DoQ connection still open after 8 s")
		}
		var idle *quic.IdleTimeoutError
		if took := time.Since(start); took < 4*time.Second || !errors.As(context.Cause(conn.Context()), &idle) {
			t.Fatalf("closed after %v: %v", took, context.Cause(conn.Context()))
		}
	})
}
