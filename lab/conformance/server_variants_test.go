package conformance

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/server"
)

// newTestEnv makes an Env in a temporary directory.
func newTestEnv(t *testing.T) *Env {
	t.Helper()
	env, err := NewEnv(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// startVariant starts v and stops it when the test ends.
func startVariant(t *testing.T, v ServerVariant, env *Env) string {
	t.Helper()
	addr, stop, err := StartServer(v, env)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("stopping %s: %v", v, err)
		}
	})
	return addr
}

// recordingConn keeps every byte read from and written to the server.
type recordingConn struct {
	net.Conn
	mu           sync.Mutex
	read, hellos bytes.Buffer
}

func (r *recordingConn) Write(p []byte) (int, error) {
	r.mu.Lock()
	r.hellos.Write(p)
	r.mu.Unlock()
	return r.Conn.Write(p)
}

// written returns what the client wrote.
func (r *recordingConn) written() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]byte(nil), r.hellos.Bytes()...)
}

func (r *recordingConn) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	r.mu.Lock()
	r.read.Write(p[:n])
	r.mu.Unlock()
	return n, err
}

func (r *recordingConn) received() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]byte(nil), r.read.Bytes()...)
}

// goHandshake runs crypto/tls's client for secret.lab.test with ECH
// configured with list against addr.
func goHandshake(t *testing.T, addr string, env *Env, list []byte, edit func(*tls.Config)) (*tls.Conn, *recordingConn, error) {
	t.Helper()
	raw, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	rc := &recordingConn{Conn: raw}
	cfg := &tls.Config{ServerName: SecretName, RootCAs: env.CA.Pool(), MinVersion: tls.VersionTLS13,
		EncryptedClientHelloConfigList: list, NextProtos: []string{"http/1.1"}}
	if edit != nil {
		edit(cfg)
	}
	tc := tls.Client(rc, cfg)
	t.Cleanup(func() { tc.Close() })
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	return tc, rc, tc.Handshake()
}

func mustList(t *testing.T, k *ech.Key) []byte {
	t.Helper()
	l, err := ConfigList(k)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// rejection returns the ECHRejectionError in err, failing the test
// without one.
func rejection(t *testing.T, err error) *tls.ECHRejectionError {
	t.Helper()
	var rej *tls.ECHRejectionError
	if !errors.As(err, &rej) {
		t.Fatalf("handshake error %v (%T), want an ECHRejectionError", err, err)
	}
	return rej
}

// TestServerGoodAcceptsECH: ServerGood accepts ECH sealed to Env.Key and
// serves secret.lab.test over HTTPS.
func TestServerGoodAcceptsECH(t *testing.T) {
	env := newTestEnv(t)
	addr := startVariant(t, ServerGood, env)
	tc, _, err := goHandshake(t, addr, env, mustList(t, env.Key), nil)
	if err != nil {
		t.Fatal(err)
	}
	st := tc.ConnectionState()
	if !st.ECHAccepted || st.ServerName != SecretName {
		t.Fatalf("ECHAccepted %v, server name %q", st.ECHAccepted, st.ServerName)
	}
	req, _ := http.NewRequest("GET", "https://"+SecretName+"/", nil)
	req.Close = true
	if err := req.Write(tc); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(tc), req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

// TestServerRejectNoRetry: the server cannot decrypt and sends no retry
// configs, so crypto/tls fails with an empty RetryConfigList (after
// verifying the public name's certificate).
func TestServerRejectNoRetry(t *testing.T) {
	env := newTestEnv(t)
	addr := startVariant(t, ServerRejectNoRetry, env)
	_, _, err := goHandshake(t, addr, env, mustList(t, env.Key), nil)
	if rej := rejection(t, err); len(rej.RetryConfigList) != 0 {
		t.Fatalf("retry configs %x, want none", rej.RetryConfigList)
	}
}

// TestServerRetryForeignCert: crypto/tls checks the certificate against
// the public name before it uses retry configs; the certificate is only
// for other.lab.test, so the handshake fails with a hostname error and no
// retry configs reach the caller. The control (EncryptedClientHelloRejectionVerify
// accepting any certificate) shows the server does send retry configs:
// Env.Other's.
func TestServerRetryForeignCert(t *testing.T) {
	env := newTestEnv(t)
	addr := startVariant(t, ServerRetryForeignCert, env)
	_, _, err := goHandshake(t, addr, env, mustList(t, env.Key), nil)
	var host x509.HostnameError
	var rej *tls.ECHRejectionError
	if !errors.As(err, &host) || errors.As(err, &rej) {
		t.Fatalf("handshake error %v (%T), want an x509.HostnameError and no ECHRejectionError", err, err)
	}
	if host.Host != PublicName || len(host.Certificate.DNSNames) != 1 || host.Certificate.DNSNames[0] != ForeignName {
		t.Fatalf("hostname error for %q with certificate names %v", host.Host, host.Certificate.DNSNames)
	}
	_, _, err = goHandshake(t, addr, env, mustList(t, env.Key), func(c *tls.Config) {
		c.EncryptedClientHelloRejectionVerify = func(tls.ConnectionState) error { return nil }
	})
	if got, want := rejection(t, err).RetryConfigList, mustList(t, env.Other); !bytes.Equal(got, want) {
		t.Fatalf("retry configs %x, want Env.Other's %x", got, want)
	}
}

// TestServerRetryStale: the retry configs come with a valid public-name
// certificate, and following them is rejected again with the same retry
// configs (a loop a client must not enter twice).
func TestServerRetryStale(t *testing.T) {
	env := newTestEnv(t)
	addr := startVariant(t, ServerRetryStale, env)
	_, _, err := goHandshake(t, addr, env, mustList(t, env.Key), nil)
	retry := rejection(t, err).RetryConfigList
	l, err := ech.ParseConfigList(retry)
	if err != nil || len(l.Configs) != 1 {
		t.Fatalf("retry configs %x: %v", retry, err)
	}
	if c := l.Configs[0]; c.ConfigID != 3 || c.PublicName != PublicName || bytes.Equal(c.PublicKey, env.Other.Config.PublicKey) {
		t.Fatalf("retry config id %d, public name %q: want a fresh config 3 for %s", c.ConfigID, c.PublicName, PublicName)
	}
	_, _, err = goHandshake(t, addr, env, retry, nil)
	if again := rejection(t, err).RetryConfigList; !bytes.Equal(again, retry) {
		t.Fatalf("second rejection's retry configs %x, want the same %x", again, retry)
	}
}

// TestServerFlipConfirmation: with one bit of the acceptance confirmation
// flipped, crypto/tls takes ECH as rejected and keys its handshake with
// the outer transcript, while the server (which accepted) used the inner
// one: the client cannot decrypt the server's next record.
func TestServerFlipConfirmation(t *testing.T) {
	env := newTestEnv(t)
	addr := startVariant(t, ServerFlipConfirmation, env)
	tc, _, err := goHandshake(t, addr, env, mustList(t, env.Key), nil)
	if err == nil {
		t.Fatalf("handshake succeeded (ECHAccepted %v), want a failure", tc.ConnectionState().ECHAccepted)
	}
	if a, ok := tlsAlert(err, "local error"); !ok || a != 20 { // bad_record_mac
		t.Fatalf("handshake error %v (%T), want a local bad_record_mac alert", err, err)
	}
}

// tlsAlert returns the alert in a crypto/tls error: op "local error" for
// one it raised, "remote error" for one it received. crypto/tls reports
// both as a *net.OpError wrapping its unexported alert type (a uint8).
func tlsAlert(err error, opName string) (uint8, bool) {
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != opName {
		return 0, false
	}
	v := reflect.ValueOf(op.Err)
	if v.Kind() != reflect.Uint8 {
		return 0, false
	}
	return uint8(v.Uint()), true
}

// TestRelayPassThroughKeepsECH is the relays' control: a relay whose edit
// changes nothing leaves ECH accepted and the connection usable, so what
// the variants' clients see comes from their edits.
func TestRelayPassThroughKeepsECH(t *testing.T) {
	env := newTestEnv(t)
	backend := startVariant(t, ServerGood, env)
	r, err := startRelay(backend, func(records, msg []byte) ([]byte, bool, error) {
		return records, true, isServerHello(msg)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.close() })
	tc, _, err := goHandshake(t, r.addr(), env, mustList(t, env.Key), nil)
	if err != nil || !tc.ConnectionState().ECHAccepted {
		t.Fatalf("through the relay: %v", err)
	}
}

// TestServerCloseAfterServerHello: the client receives exactly the
// ServerHello record, then EOF.
func TestServerCloseAfterServerHello(t *testing.T) {
	env := newTestEnv(t)
	addr := startVariant(t, ServerCloseAfterSH, env)
	_, rc, err := goHandshake(t, addr, env, mustList(t, env.Key), nil)
	if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("handshake error %v (%T), want EOF", err, err)
	}
	got := rc.received()
	msg, n, err := ech.HandshakeFromRecords(got)
	if err != nil || n != len(got) || isServerHello(msg) != nil {
		t.Fatalf("client received %d bytes (first message ends at %d, %v), want exactly one ServerHello", len(got), n, err)
	}
}

// TestServerHRRWithoutECH: the client reads a HelloRetryRequest without
// the encrypted_client_hello extension, takes ECH as rejected and sends
// its second ClientHelloOuter (for the public name, with the first one's
// ECH extension, enc included); the server, which accepted ECH, answers
// illegal_parameter (RFC 9849 §7.1.1: enc must be empty).
func TestServerHRRWithoutECH(t *testing.T) {
	env := newTestEnv(t)
	addr := startVariant(t, ServerHRRNoECH, env)
	tc, rc, err := goHandshake(t, addr, env, mustList(t, env.Key), nil)
	if err == nil {
		t.Fatalf("handshake succeeded (ECHAccepted %v), want a failure", tc.ConnectionState().ECHAccepted)
	}
	if a, ok := tlsAlert(err, "remote error"); !ok || a != 47 { // illegal_parameter
		t.Fatalf("handshake error %v (%T), want an illegal_parameter alert from the server", err, err)
	}
	msg, _, err := ech.HandshakeFromRecords(rc.received())
	if err != nil || isServerHello(msg) == nil {
		t.Fatalf("client's first message: %v, want a HelloRetryRequest", err)
	}
	if _, err := withoutExtension(msg[4:], extECH); err == nil {
		t.Fatal("the HelloRetryRequest the client read still has an ECH extension")
	}
	ch1, ch2 := clientHellos(t, rc.written())
	if ch2.ServerName != PublicName || ch2.ECH == nil || len(ch2.ECH.Enc) == 0 || !bytes.Equal(ch2.ECH.Payload, ch1.ECH.Payload) {
		t.Fatalf("second ClientHello for %q, ECH %+v: want the outer one with the first's ECH extension", ch2.ServerName, ch2.ECH)
	}
}

// TestServerHRRControl: the same server without the relay's edit: the
// HelloRetryRequest carries the ECH confirmation and crypto/tls accepts
// ECH through it.
func TestServerHRRControl(t *testing.T) {
	env := newTestEnv(t)
	srv, err := server.Start(server.Config{PublicName: PublicName, Names: []string{SecretName}, CA: env.CA,
		Keys: fixedKeys{tlsKey(env.Key, true)}, ForceHRR: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	tc, rc, err := goHandshake(t, srv.Addr(), env, mustList(t, env.Key), nil)
	if err != nil || !tc.ConnectionState().ECHAccepted {
		t.Fatalf("handshake: %v", err)
	}
	msg, _, err := ech.HandshakeFromRecords(rc.received())
	if err != nil || isServerHello(msg) == nil {
		t.Fatalf("client's first message: %v, want a HelloRetryRequest", err)
	}
	if _, err := withoutExtension(msg[4:], extECH); err != nil {
		t.Fatalf("the HelloRetryRequest has no ECH extension: %v", err)
	}
}

// clientHellos parses the two ClientHellos in what a client wrote (a
// change_cipher_spec record may sit between them).
func clientHellos(t *testing.T, b []byte) (*ech.ClientHello, *ech.ClientHello) {
	t.Helper()
	var hellos []*ech.ClientHello
	for len(hellos) < 2 {
		msg, n, err := ech.HandshakeFromRecords(b)
		if err != nil {
			t.Fatalf("ClientHello %d: %v", len(hellos)+1, err)
		}
		ch, err := ech.ParseClientHello(msg)
		if err != nil {
			t.Fatal(err)
		}
		hellos, b = append(hellos, ch), b[n:]
	}
	return hellos[0], hellos[1]
}

// TestServerFlipHRRConfirmation: the client reads a HelloRetryRequest whose
// ECH confirmation differs from the server's in exactly one bit, takes ECH
// as rejected and sends its second ClientHelloOuter; the server, which
// accepted ECH, refuses it with illegal_parameter, as for hrr-without-ech.
func TestServerFlipHRRConfirmation(t *testing.T) {
	env := newTestEnv(t)
	addr := startVariant(t, ServerFlipHRRConfirmation, env)
	tc, rc, err := goHandshake(t, addr, env, mustList(t, env.Key), nil)
	if err == nil {
		t.Fatalf("handshake succeeded (ECHAccepted %v), want a failure", tc.ConnectionState().ECHAccepted)
	}
	if a, ok := tlsAlert(err, "remote error"); !ok || a != 47 { // illegal_parameter
		t.Fatalf("handshake error %v (%T), want an illegal_parameter alert from the server", err, err)
	}
	msg, _, err := ech.HandshakeFromRecords(rc.received())
	if err != nil || isServerHello(msg) == nil {
		t.Fatalf("client's first message: %v, want a HelloRetryRequest", err)
	}
	if off, n, err := extensionData(msg, extECH); err != nil || n != 8 || off+n > len(msg) {
		t.Fatalf("the HelloRetryRequest the client read: ECH extension at %d (%d bytes): %v", off, n, err)
	}
	ch1, ch2 := clientHellos(t, rc.written())
	if ch2.ServerName != PublicName || ch2.ECH == nil || !bytes.Equal(ch2.ECH.Payload, ch1.ECH.Payload) {
		t.Fatalf("second ClientHello for %q, ECH %+v: want the outer one with the first's ECH extension", ch2.ServerName, ch2.ECH)
	}
}
