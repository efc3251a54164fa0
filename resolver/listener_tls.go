package resolver

import (
	"crypto/tls"
	"errors"
	"fmt"
)

// TLSListenerOptions is what an encrypted listener (DoH, DoH3, DoQ; DoT
// may use it too) needs: an address, a certificate and optional ECH keys.
type TLSListenerOptions struct {
	// Addr to listen on, host:port with an IP literal; "" means
	// 127.0.0.1:0 (a free port on loopback).
	Addr string
	// Certificates to serve; or CertFile and KeyFile (PEM) to load one.
	Certificates      []tls.Certificate
	CertFile, KeyFile string
	// ECHKeys, when set, let the listener itself accept Encrypted Client
	// Hello; GetECHKeys is the dynamic form (it wins when both are set).
	ECHKeys    []tls.EncryptedClientHelloKey
	GetECHKeys func(*tls.ClientHelloInfo) ([]tls.EncryptedClientHelloKey, error)
}

// ErrNoCertificate is returned when an encrypted listener has no certificate.
var ErrNoCertificate = errors.New("resolver: listener has no TLS certificate")

func (o *TLSListenerOptions) addr() string {
	if o.Addr == "" {
		return "127.0.0.1:0"
	}
	return o.Addr
}

// ServerConfig builds the listener's tls.Config offering the given ALPN
// protocols.
func (o *TLSListenerOptions) ServerConfig(alpn ...string) (*tls.Config, error) {
	certs := append([]tls.Certificate(nil), o.Certificates...)
	if o.CertFile != "" || o.KeyFile != "" {
		c, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("resolver: loading certificate %s: %w", o.CertFile, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, ErrNoCertificate
	}
	return &tls.Config{
		Certificates:                certs,
		NextProtos:                  alpn,
		MinVersion:                  tls.VersionTLS12,
		EncryptedClientHelloKeys:    o.ECHKeys,
		GetEncryptedClientHelloKeys: o.GetECHKeys,
	}, nil
}
