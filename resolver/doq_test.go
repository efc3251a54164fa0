package resolver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/echlab/echlab/internal/testutil"

	"github.com/miekg/dns"
	"github.com/quic-go/quic-go"
)

// dialDoQ opens a raw QUIC connection (ALPN doq) to s.
func dialDoQ(t *testing.T, l *lab, s *DoQServer) *quic.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conf := &tls.Config{RootCAs: l.ca.Pool(), ServerName: "dns.lab.test", NextProtos: []string{alpnDoQ}}
	conn, err := quic.DialAddr(ctx, s.Addr().String(), conf, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.CloseWithError(0, "") })
	return conn
}

func framed(t *testing.T, m *dns.Msg) []byte {
	b := packed(t, m)
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...)
}

// closedWith waits for conn to be closed by the server and returns the
// DoQ error code it used.
func closedWith(t *testing.T, conn *quic.Conn) uint64 {
	t.Helper()
	select {
	case <-conn.Context().Done():
	case <-time.After(5 * time.Second):
		t.Fatal("server did not close the connection")
	}
	var ae *quic.ApplicationError
	if err := context.Cause(conn.Context()); !errors.As(err, &ae) || !ae.Remote {
		t.Fatalf("connection closed by %v, want a DoQ error from the server", err)
	}
	return uint64(ae.ErrorCode)
}

// TestDoQProtocolErrors: each RFC 9250 §4.3.3 violation closes the
// connection with DOQ_PROTOCOL_ERROR.
func TestDoQProtocolErrors(t *testing.T) {
	l := newLab(t)
	s := startDoQ(t, l, DoQOptions{TLSListenerOptions: l.tlsOpts(), StreamTimeout: 300 * time.Millisecond})
	keepalive := query("public.lab.test.", dns.TypeA, 0)
	keepalive.SetEdns0(1232, false)
	keepalive.IsEdns0().Option = append(keepalive.IsEdns0().Option, &dns.EDNS0_TCP_KEEPALIVE{Code: dns.EDNS0TCPKEEPALIVE})
	good := framed(t, query("public.lab.test.", dns.TypeA, 0))
	cases := []struct {
		name string
		send func(*quic.Conn) error
	}{
		{"non-zero message ID", bidi(framed(t, query("public.lab.test.", dns.TypeA, 42)), true)},
		{"short message", bidi(good[:len(good)-3], true)},
		{"length beyond the FIN", bidi(append([]byte{0xff, 0xff}, good[2:]...), true)},
		{"two queries on one stream", bidi(append(append([]byte{}, good...), good...), true)},
		{"edns-tcp-keepalive", bidi(framed(t, keepalive), true)},
		{"no STREAM FIN", bidi(good, false)},
		{"undecodable message", bidi([]byte{0, 3, 0, 0, 1}, true)},
		{"unidirectional stream", func(c *quic.Conn) error {
			str, err := c.OpenUniStream()
			if err != nil {
				return err
			}
			_, err = str.Write(good)
			str.Close()
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conn := dialDoQ(t, l, s)
			if err := tc.send(conn); err != nil {
				t.Fatal(err)
			}
			if code := closedWith(t, conn); code != DoQProtocolError {
				t.Fatalf("closed with %#x, want DOQ_PROTOCOL_ERROR", code)
			}
		})
	}
}

// bidi returns a sender that writes b on a new bidirectional stream and,
// if fin, ends it with STREAM FIN.
func bidi(b []byte, fin bool) func(*quic.Conn) error {
	return func(c *quic.Conn) error {
		str, err := c.OpenStream()
		if err != nil {
			return err
		}
		if _, err := str.Write(b); err != nil {
			return err
		}
		if fin {
			return str.Close()
		}
		return nil
	}
}

// TestDoQStreams: several queries on streams of one connection, each
// answered with ID 0 and STREAM FIN; padding only when asked for.
func TestDoQStreams(t *testing.T) {
	l := newLab(t)
	s := startDoQ(t, l, DoQOptions{TLSListenerOptions: l.tlsOpts()})
	conn := dialDoQ(t, l, s)
	for i, pad := range []bool{true, false, true} {
		q := query("secret.lab.test.", dns.TypeHTTPS, 0)
		if pad {
			padQuery(q)
		}
		str, err := conn.OpenStreamSync(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if want := quic.StreamID(4 * i); str.StreamID() != want {
			t.Errorf("stream %d, want %d", str.StreamID(), want)
		}
		str.Write(framed(t, q))
		str.Close()
		str.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, err := io.ReadAll(str) // returns only after the server's FIN
		if err != nil {
			t.Fatal(err)
		}
		m, err := parseDoQMessage(b)
		if err != nil {
			t.Fatal(err)
		}
		checkHTTPSAnswer(t, setID(m, 0x1234), l.echList)
		if n := len(b) - 2; hasPadding(m) != pad || (pad && n%responsePadBlock != 0) {
			t.Errorf("pad=%v: response of %d octets, padded=%v", pad, n, hasPadding(m))
		}
		if s := l.h.last(t); s.Meta.Transport != TransportDoQ || s.Meta.Client == nil {
			t.Errorf("meta %+v", s.Meta)
		}
	}
	if conn.Context().Err() != nil {
		t.Fatal("connection closed after valid queries")
	}
}

// TestDoQClientReset: a stream the client resets is abandoned, and the
// server resets its side with DOQ_REQUEST_CANCELLED.
func TestDoQClientReset(t *testing.T) {
	l := newLab(t)
	s := startDoQ(t, l, DoQOptions{TLSListenerOptions: l.tlsOpts()})
	conn := dialDoQ(t, l, s)
	str, err := conn.OpenStreamSync(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	str.Write([]byte{0, 40, 0, 0})
	str.CancelWrite(DoQRequestCancelled)
	str.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.ReadAll(str)
	if code, ok := DoQErrorCode(err); !ok || code != DoQRequestCancelled {
		t.Fatalf("read after reset: %v, want a DOQ_REQUEST_CANCELLED reset", err)
	}
}

func TestParseDoQMessage(t *testing.T) {
	good := framed(t, query("a.lab.test.", dns.TypeA, 0))
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrDoQLength},
		{"one octet", []byte{0}, ErrDoQLength},
		{"short", good[:len(good)-1], ErrDoQLength},
		{"trailing", append(append([]byte{}, good...), 0), ErrDoQLength},
		{"id", framed(t, query("a.lab.test.", dns.TypeA, 1)), ErrDoQMessageID},
		{"garbage", []byte{0, 2, 0, 0}, ErrDoQMalformed},
	}
	for _, tc := range cases {
		if _, err := parseDoQMessage(tc.in); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := parseDoQMessage(good); err != nil {
		t.Fatal(err)
	}
}

func FuzzDoQMessage(f *testing.F) {
	m := query("secret.lab.test.", dns.TypeHTTPS, 0)
	b, _ := m.Pack()
	f.Add(append([]byte{0, byte(len(b))}, b...))
	f.Add([]byte{0, 0})
	f.Add([]byte{0xff, 0xff, 1})
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := parseDoQMessage(in)
		if err == nil && m.Id != 0 {
			t.Fatalf("accepted message ID %d", m.Id)
		}
	})
}

// TestKdigDoQ: Knot's kdig, an independent DoQ client, queries our server
// over QUIC. Debian 12's kdig 3.2 does DoQ (ngtcp2 is built in, so ldd
// does not show it), but kdig applies options in order and every +tls-*
// option turns TLS over TCP back on: +quic has to come last. The server's
// certificate is checked two ways, with the lab CA and with an SPKI pin, and
// a wrong pin or host name must make kdig fail.
func TestKdigDoQ(t *testing.T) {
	kdig := testutil.NeedTool(t, "kdig")
	l := newLab(t)
	s := startDoQ(t, l, DoQOptions{TLSListenerOptions: l.tlsOpts()})
	port := strconv.Itoa(s.Addr().(*net.UDPAddr).Port)
	ca := l.writeCA(t)
	for _, tt := range []struct {
		name string
		tls  []string
	}{
		{"ca", []string{"+tls-ca=" + ca, "+tls-hostname=dns.lab.test"}},
		{"pin", []string{"+tls-pin=" + spkiPin(t, l.cert)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := append(append([]string{"@127.0.0.1", "-p", port}, tt.tls...), "+quic", "secret.lab.test", "HTTPS")
			out := run(t, kdig, args...)
			if !strings.Contains(out, ";; QUIC session (QUICv1)") || !strings.Contains(out, "status: NOERROR") ||
				!strings.Contains(out, "(UDP)") || !bytes.Equal(echOf(t, out), l.echList) {
				t.Fatalf("kdig %s output:\n%s", strings.Join(args, " "), out)
			}
			if s := l.h.last(t); s.Meta.Transport != TransportDoQ || s.ID != 0 {
				t.Fatalf("server saw %+v", s)
			}
		})
	}
	for name, bad := range map[string][]string{
		"wrong pin":      {"+tls-pin=" + base64.StdEncoding.EncodeToString(make([]byte, sha256.Size))},
		"wrong hostname": {"+tls-ca=" + ca, "+tls-hostname=other.lab.test"},
	} {
		args := append(append([]string{"@127.0.0.1", "-p", port}, bad...), "+quic", "secret.lab.test", "HTTPS")
		if out, err := exec.Command(kdig, args...).CombinedOutput(); err == nil {
			t.Errorf("%s: kdig %s succeeded:\n%s", name, strings.Join(args, " "), out)
		}
	}
}

// spkiPin is kdig's +tls-pin value for cert: the base64 SHA-256 of its
// SubjectPublicKeyInfo (RFC 7469 §2.4).
func spkiPin(t *testing.T, cert tls.Certificate) string {
	t.Helper()
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// TestDoQConcurrentStreams: many streams in flight on one connection, then
// more one after another (served by the connection's workers, which are
// reused), are each answered with their own question; once the
// connection ends its workers are gone.
func TestDoQConcurrentStreams(t *testing.T) {
	l := newLab(t)
	s := startDoQ(t, l, DoQOptions{TLSListenerOptions: l.tlsOpts()})
	before := runtime.NumGoroutine()
	conn := dialDoQ(t, l, s)
	names := []string{"secret.lab.test.", "www.lab.test.", "nx.lab.test.", "public.lab.test."}
	ask := func(name string) error {
		str, err := conn.OpenStreamSync(context.Background())
		if err != nil {
			return err
		}
		str.Write(framed(t, query(name, dns.TypeA, 0)))
		str.Close()
		str.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, err := io.ReadAll(str)
		if err != nil {
			return err
		}
		m, err := parseDoQMessage(b)
		if err != nil {
			return err
		}
		if len(m.Question) != 1 || m.Question[0].Name != name {
			return fmt.Errorf("asked %s, answer to %v", name, m.Question)
		}
		return nil
	}
	errs := make(chan error, 64)
	for i := range 64 {
		go func() { errs <- ask(names[i%len(names)]) }()
	}
	for range 64 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for i := range 20 {
		if err := ask(names[i%len(names)]); err != nil {
			t.Fatal(err)
		}
	}
	conn.CloseWithError(0, "")
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+2 {
		t.Errorf("%d goroutines after the connection ended, %d before it", n, before)
	}
}
