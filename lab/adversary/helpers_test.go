package adversary

import (
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/lab/capture"
)

// firstWriteConn is a net.Conn that keeps what crypto/tls writes (its
// first flight: the ClientHello records) and fails every read, so that
// the handshake stops right after the ClientHello.
type firstWriteConn struct {
	mu    sync.Mutex
	wrote []byte
}

var errStop = errors.New("stop after the ClientHello")

func (c *firstWriteConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wrote = append(c.wrote, b...)
	return len(b), nil
}
func (c *firstWriteConn) Read([]byte) (int, error)         { return 0, errStop }
func (c *firstWriteConn) Close() error                     { return nil }
func (c *firstWriteConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *firstWriteConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *firstWriteConn) SetDeadline(time.Time) error      { return nil }
func (c *firstWriteConn) SetReadDeadline(time.Time) error  { return nil }
func (c *firstWriteConn) SetWriteDeadline(time.Time) error { return nil }

// clientHello returns the ClientHello records crypto/tls sends with cfg.
func clientHello(t testing.TB, cfg *tls.Config) []byte {
	t.Helper()
	c := &firstWriteConn{}
	if err := tls.Client(c, cfg).Handshake(); !errors.Is(err, errStop) {
		t.Fatalf("handshake: %v, want it to stop after the ClientHello", err)
	}
	if _, err := ech.ParseClientHelloRecords(c.wrote); err != nil {
		t.Fatalf("crypto/tls's ClientHello does not parse: %v", err)
	}
	return c.wrote
}

// hellos are real ClientHellos: crypto/tls without and with ECH (a fresh
// key, config id 7, public name public.lab.test, inner SNI
// secret.lab.test), and the plain one with a GREASE ECH extension.
type hellos struct {
	plain, ech, grease []byte
	echList            []byte
}

func newHellos(t testing.TB, sni string) hellos {
	t.Helper()
	key, err := ech.GenerateKey(ech.KeyOptions{ConfigID: 7})
	if err != nil {
		t.Fatal(err)
	}
	list, err := ech.MarshalConfigList(key.Config.Raw)
	if err != nil {
		t.Fatal(err)
	}
	h := hellos{echList: list}
	h.plain = clientHello(t, &tls.Config{ServerName: sni, MinVersion: tls.VersionTLS13})
	h.ech = clientHello(t, &tls.Config{ServerName: sni, MinVersion: tls.VersionTLS13,
		EncryptedClientHelloConfigList: list})
	h.grease = greaseHello(t, h.plain, nil)
	return h
}

// greaseHello is plain (records) with a GREASE ECH extension, as records.
func greaseHello(t testing.TB, plain []byte, opts *ech.GreaseOptions) []byte {
	t.Helper()
	msg, _, err := ech.HandshakeFromRecords(plain)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := ech.GreaseClientHello(msg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return ech.MarshalRecords(ch.Raw)
}

// parsedHello parses ClientHello records.
func parsedHello(t testing.TB, records []byte) *ech.ClientHello {
	t.Helper()
	ch, err := ech.ParseClientHelloRecords(records)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// flow is a Flow of role and proto with loopback addresses.
func flow(role capture.Role, proto string) capture.Flow {
	return capture.Flow{Role: role, Proto: proto,
		Client:  netip.MustParseAddrPort("127.0.0.1:50000"),
		Relay:   netip.MustParseAddrPort("127.0.0.1:8443"),
		Backend: "127.0.0.1:9443"}
}

// mustParse parses a column or fails the test.
func mustParse(t testing.TB, spec string) *Adversary {
	t.Helper()
	ps, err := Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	return New(ps)
}

// lastDecision is the adversary's latest decision.
func lastDecision(t testing.TB, a *Adversary) Decision {
	t.Helper()
	ds := a.Decisions()
	if len(ds) == 0 {
		t.Fatal("no decision logged")
	}
	return ds[len(ds)-1]
}
