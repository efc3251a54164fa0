package capture_test

// A copy of the TLS helpers of lab/observe's tests (test helpers do not
// cross packages).

import (
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/internal/pki"
	"github.com/echlab/echlab/internal/testutil"
	"github.com/echlab/echlab/lab/capture"
)

// labTLS is a loopback TLS server with ECH, its keys and a client config.
type labTLS struct {
	ca     *pki.CA
	key    *ech.Key
	list   []byte // ECHConfigList
	server *tls.Config
}

func newLabTLS(t testing.TB) *labTLS {
	t.Helper()
	ca, err := pki.NewCA("lab test CA")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue("lab", []string{"public.lab.test", "secret.lab.test", "plain.lab.test", "doq.lab.test", "127.0.0.1"}, false)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ech.GenerateKey(ech.KeyOptions{ConfigID: 7})
	if err != nil {
		t.Fatal(err)
	}
	list, err := ech.MarshalConfigList(key.Config.Raw)
	if err != nil {
		t.Fatal(err)
	}
	tk, err := key.TLSKey(false)
	if err != nil {
		t.Fatal(err)
	}
	return &labTLS{ca: ca, key: key, list: list, server: &tls.Config{
		Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13,
		NextProtos:               []string{"h2", "http/1.1", "doq"},
		EncryptedClientHelloKeys: []tls.EncryptedClientHelloKey{tk},
	}}
}

func (l *labTLS) client(sni string, useECH bool, alpn ...string) *tls.Config {
	c := &tls.Config{ServerName: sni, RootCAs: l.ca.Pool(), NextProtos: alpn, MinVersion: tls.VersionTLS13}
	if useECH {
		c.EncryptedClientHelloConfigList = l.list
	}
	return c
}

// serveTLS accepts TLS connections on a recorded loopback listener and
// echoes one line back.
func serveTLS(t testing.TB, rec *capture.Recorder, cfg *tls.Config) string {
	t.Helper()
	ln := testutil.ListenTCP(t)
	testutil.AcceptEach(t, rec.WrapListener(ln), func(c net.Conn) {
		tc := tls.Server(c, cfg)
		tc.SetDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 64)
		n, err := tc.Read(buf)
		if err == nil {
			tc.Write(buf[:n])
		}
		tc.Close()
	})
	return ln.Addr().String()
}

// dialTLS makes one TLS connection and an exchange of a few bytes.
func dialTLS(t testing.TB, addr string, cfg *tls.Config) *tls.ConnectionState {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		t.Fatalf("dial %s (SNI %s): %v", addr, cfg.ServerName, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	st := c.ConnectionState()
	return &st
}
