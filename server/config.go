package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/internal/pki"
)

// Sentinel errors of this package; returned errors wrap them.
var (
	// ErrConfig reports a Config or SplitConfig that cannot work.
	ErrConfig = errors.New("server: invalid configuration")
	// ErrClientHello reports a ClientHello the split relay could not read.
	ErrClientHello = errors.New("server: bad ClientHello")
	// ErrNoRoute reports a name the split relay has no backend for.
	ErrNoRoute = errors.New("server: no route")
)

// KeySource supplies the ECH keys a server accepts, asked afresh on every
// handshake so that rotation applies without a restart. Keys with
// SendAsRetry set are sent as retry configs. *ech.KeySet is one.
type KeySource interface {
	TLSKeys() ([]tls.EncryptedClientHelloKey, error)
}

// StaticKeys is a fixed KeySource built from ech.Keys; every key is also
// sent as a retry config.
type StaticKeys []tls.EncryptedClientHelloKey

// NewStaticKeys turns ech.Keys into a StaticKeys.
func NewStaticKeys(keys ...*ech.Key) StaticKeys {
	out := make(StaticKeys, 0, len(keys))
	for _, k := range keys {
		out = append(out, tls.EncryptedClientHelloKey{Config: k.Config.Raw, PrivateKey: k.PrivateKey, SendAsRetry: true})
	}
	return out
}

// TLSKeys returns the keys.
func (s StaticKeys) TLSKeys() ([]tls.EncryptedClientHelloKey, error) { return s, nil }

// Config configures Start. The zero value serves public.lab.test and
// secret.lab.test on 127.0.0.1 (a free port) with a fresh lab CA and no
// ECH keys, which is the baseline.
type Config struct {
	// Addr is the TCP address (and, with HTTP3, the UDP address) to listen
	// on. "" means "127.0.0.1:0".
	Addr string
	// PublicName is the client-facing name (the ECHConfig public_name).
	// "" means "public.lab.test".
	PublicName string
	// Names are the backend names served behind ECH. nil means
	// {"secret.lab.test"}.
	Names []string
	// CA issues a certificate per name (chosen by SNI) and, with
	// RequireClientCert, verifies client certificates. nil means a fresh CA
	// (see Server.CA).
	CA *pki.CA
	// Keys are the ECH keys. nil serves without ECH (baseline).
	Keys KeySource
	// RequireClientCert requires a client certificate issued by CA (mTLS).
	RequireClientCert bool
	// ForceHRR makes the server prefer only P-256, a group Go clients send
	// no key share for, so every handshake goes through HelloRetryRequest.
	ForceHRR bool
	// HTTP3 also serves HTTP/3 over QUIC on the same port number (UDP) and
	// advertises it with Alt-Svc.
	HTTP3 bool
	// Log receives one ConnRecord JSON line per connection. nil logs
	// nothing.
	Log io.Writer
	// Mode names the server in its ConnRecords. "" means "shared", or
	// "baseline" when Keys is nil.
	Mode string
	// HandshakeTimeout bounds a TLS handshake. 0 means 10 s.
	HandshakeTimeout time.Duration
	// Now is the clock. nil means time.Now.
	Now func() time.Time
	// IdleTimeout closes a connection that stays idle this long: after the
	// TLS handshake before its first request, between HTTP/1.1 requests,
	// an HTTP/2 connection with no stream open, an HTTP/3 connection with
	// no activity. 0 means DefaultIdleTimeout (60 s).
	IdleTimeout time.Duration
	// ReadTimeout bounds reading a request: its headers from their first
	// byte, then its body from when the handler starts; a request that
	// takes longer is cut off and its connection closed (HTTP/2 and
	// HTTP/3 reset the stream). A handler that runs longer than this is
	// not affected. 0 means DefaultReadTimeout (10 s).
	ReadTimeout time.Duration
	// FrontSecret is the secret shared with the split fronts in front of
	// this server (LoadFrontSecret). With it, a connection may start with
	// a front's PROXY v2 header, which is stripped; when its HMAC verifies,
	// the record takes the real client address from it and, for a
	// ClientHelloInner the front opened, ECH "accepted" with the outer SNI,
	// config id and suite. nil accepts no header: a ClientHelloInner
	// received in the clear is logged as ECHInnerInClear.
	FrontSecret []byte
}

// populate fills in defaults and validates the config once.
func (c Config) populate() (Config, error) {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:0"
	}
	if err := checkAddr(c.Addr); err != nil {
		return c, fmt.Errorf("%w: Addr %q: %v", ErrConfig, c.Addr, err)
	}
	if _, ok := unixPath(c.Addr); ok && c.HTTP3 {
		return c, fmt.Errorf("%w: Addr %q: HTTP/3 needs a UDP port, not a Unix socket", ErrConfig, c.Addr)
	}
	if c.PublicName == "" {
		c.PublicName = "public.lab.test"
	}
	if c.Names == nil {
		c.Names = []string{"secret.lab.test"}
	}
	for _, n := range append([]string{c.PublicName}, c.Names...) {
		if err := ech.ValidatePublicName(n); err != nil {
			return c, fmt.Errorf("%w: name %q: %v", ErrConfig, n, err)
		}
	}
	if c.CA == nil {
		ca, err := pki.NewCA("echlab server CA")
		if err != nil {
			return c, err
		}
		c.CA = ca
	}
	if c.Mode == "" {
		c.Mode = "shared"
		if c.Keys == nil {
			c.Mode = "baseline"
		}
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = 10 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	return c, nil
}
