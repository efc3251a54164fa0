package client

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/echlab/echlab/ech"
)

// GREASE ECH (RFC 9849 §6.2) with crypto/tls: Go 1.26's client offers ECH
// only with a real EncryptedClientHelloConfigList and never sends a GREASE
// encrypted_client_hello extension (handshake_client.go has no GREASE
// path). So ModeGREASE takes the ClientHello crypto/tls would send, adds a
// GREASE encrypted_client_hello with the ech package (ech/grease.go),
// writes it on a raw TCP socket and reads the server's first message only.
// The handshake cannot be completed: crypto/tls's transcript holds the
// unmodified ClientHello. The result says so (HandshakeComplete false, Note).

// NoteGREASE is the Result.Note of a GREASE fetch.
const NoteGREASE = "GREASE ECH ClientHello sent on a raw TCP socket; only the server's first message was read, the handshake was not completed (crypto/tls cannot send GREASE ECH)"

func (f *fetcher) grease(ctx context.Context) error {
	f.res.ECH, f.res.OuterSNI = ECHGrease, f.res.InnerSNI
	hello, err := f.greaseHello()
	if err != nil {
		return &Error{Class: ClassConfig, Op: "grease", Err: err}
	}
	conn, err := f.dialTCP(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	f.res.Note = NoteGREASE
	f.res.ClientRandom = hex.EncodeToString(ClientHelloRandom(hello))
	t0 := time.Now()
	conn.SetDeadline(deadline(ctx, f.opts.HandshakeTimeout))
	if _, err := conn.Write(hello); err != nil {
		return classify("handshake", ClassConnect, err)
	}
	sh, err := readServerHello(conn)
	f.res.HandshakeTime = time.Since(t0)
	if err != nil {
		return classify("handshake", ClassHandshake, err)
	}
	f.recordServerHello(sh)
	return nil
}

func deadline(ctx context.Context, d time.Duration) time.Time {
	t := time.Now().Add(d)
	if cd, ok := ctx.Deadline(); ok && cd.Before(t) {
		return cd
	}
	return t
}

// greaseHello returns the records of crypto/tls's ClientHello with a GREASE
// encrypted_client_hello extension added by ech.GreaseClientHello
// (DHKEM(X25519), HKDF-SHA256/AES-128-GCM, a payload as long as sealing
// this ClientHello would make).
func (f *fetcher) greaseHello() ([]byte, error) {
	conf := f.tlsConfig(nil)
	conf.MinVersion = tls.VersionTLS13 // ECH needs TLS 1.3
	first, err := CaptureClientHello(conf)
	if err != nil {
		return nil, err
	}
	msg, _, err := ech.HandshakeFromRecords(first)
	if err != nil {
		return nil, err
	}
	ch, err := ech.GreaseClientHello(msg, nil)
	if err != nil {
		return nil, err
	}
	return ech.MarshalRecords(ch.Raw), nil
}

// CaptureClientHello runs crypto/tls with conf against a conn that keeps
// what it writes and fails the first read, and returns the TLS records of
// the ClientHello crypto/tls sent (no network is used).
func CaptureClientHello(conf *tls.Config) ([]byte, error) {
	c := &captureConn{}
	err := tls.Client(c, conf).Handshake()
	if len(c.written) == 0 {
		return nil, fmt.Errorf("client: crypto/tls wrote no ClientHello: %w", err)
	}
	return c.written, nil
}

var errCaptured = errors.New("client: ClientHello captured")

// captureConn is a net.Conn that records writes and ends on read.
type captureConn struct {
	mu      sync.Mutex
	written []byte
}

func (c *captureConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.written = append(c.written, b...)
	return len(b), nil
}
func (c *captureConn) Read([]byte) (int, error)         { return 0, errCaptured }
func (c *captureConn) Close() error                     { return nil }
func (c *captureConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *captureConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *captureConn) SetDeadline(time.Time) error      { return nil }
func (c *captureConn) SetReadDeadline(time.Time) error  { return nil }
func (c *captureConn) SetWriteDeadline(time.Time) error { return nil }

// readServerHello reads records until the first handshake message is whole,
// and parses it as a ServerHello. An alert gives an error wrapping
// ech.ErrAlert.
func readServerHello(conn net.Conn) (*ech.ServerHello, error) {
	var buf []byte
	tmp := make([]byte, 4096)
	for {
		_, err := ech.RecordsNeeded(buf)
		if err == nil {
			return ech.ParseServerHelloRecords(buf)
		}
		if !errors.Is(err, ech.ErrNeedMore) {
			return nil, err
		}
		if len(buf) > 1<<17 {
			return nil, fmt.Errorf("client: no ServerHello in the first %d bytes", len(buf))
		}
		n, rerr := conn.Read(tmp)
		buf = append(buf, tmp[:n]...)
		if rerr != nil && n == 0 {
			return nil, fmt.Errorf("client: reading ServerHello: %w", rerr)
		}
	}
}

// recordServerHello fills the result from a ServerHello.
func (f *fetcher) recordServerHello(sh *ech.ServerHello) {
	v := sh.Version
	if sh.SupportedVersion != 0 {
		v = sh.SupportedVersion
	}
	f.res.Version = tls.VersionName(v)
	f.res.Cipher = tls.CipherSuiteName(sh.CipherSuite)
	if sh.KeyShareGroup != 0 {
		f.res.Group = tls.CurveID(sh.KeyShareGroup).String()
	}
	if sh.IsHRR {
		f.res.Note += "; the server answered with a HelloRetryRequest"
	}
}
