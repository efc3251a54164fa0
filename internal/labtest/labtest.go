// Package labtest holds the loopback TLS fixture that the lab packages'
// tests share: a test CA, a certificate for the lab's names, one ECH key,
// an echo server and a dialer, and a quic-go server and dialer that keep
// the client's datagrams.
package labtest

import (
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/internal/pki"
	"github.com/echlab/echlab/internal/testutil"
)

// TLS is a TLS server config with ECH, its CA and key, and client configs.
type TLS struct {
	CA     *pki.CA
	Key    *ech.Key
	List   []byte // ECHConfigList of Key
	Server *tls.Config
}

// NewTLS makes a CA, a certificate for public.lab.test, secret.lab.test,
// plain.lab.test, doq.lab.test and 127.0.0.1, and an ECH key (config id
// 7); the server offers h2, http/1.1 and doq.
func NewTLS(t testing.TB) *TLS {
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
	return &TLS{CA: ca, Key: key, List: list, Server: &tls.Config{
		Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13,
		NextProtos:               []string{"h2", "http/1.1", "doq"},
		EncryptedClientHelloKeys: []tls.EncryptedClientHelloKey{tk},
	}}
}

// Client is a client config for sni that trusts the CA, with ECH (the
// fixture's config list) when useECH is set.
func (l *TLS) Client(sni string, useECH bool, alpn ...string) *tls.Config {
	c := &tls.Config{ServerName: sni, RootCAs: l.CA.Pool(), NextProtos: alpn, MinVersion: tls.VersionTLS13}
	if useECH {
		c.EncryptedClientHelloConfigList = l.List
	}
	return c
}

// ServeEcho accepts TLS connections on ln until the test ends and echoes
// one read back on each.
func ServeEcho(t testing.TB, ln net.Listener, cfg *tls.Config) {
	t.Helper()
	testutil.AcceptEach(t, ln, func(c net.Conn) {
		tc := tls.Server(c, cfg)
		tc.SetDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 64)
		n, err := tc.Read(buf)
		if err == nil {
			tc.Write(buf[:n])
		}
		tc.Close()
	})
}

// DialTLS makes one TLS connection to addr and an exchange of a few bytes.
func DialTLS(t testing.TB, addr string, cfg *tls.Config) *tls.ConnectionState {
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
