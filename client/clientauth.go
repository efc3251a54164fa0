package client

import (
	"crypto/tls"
	"fmt"
	"sync/atomic"
)

// clientAuth tracks, for one connection, whether the server asked for a
// client certificate and whether one was sent. In TLS 1.3 the server checks
// the certificate after the client's handshake has finished, so a refusal
// shows up as a failed request (an alert or a broken pipe); these flags let
// the client report it as the handshake failure it is.
type clientAuth struct {
	requested, sent atomic.Bool
}

// hook returns a GetClientCertificate that picks the first of certs the
// server accepts (as crypto/tls does) and records what happened.
func (a *clientAuth) hook(certs []tls.Certificate) func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
		a.requested.Store(true)
		for i := range certs {
			if cri.SupportsCertificate(&certs[i]) == nil {
				a.sent.Store(true)
				return &certs[i], nil
			}
		}
		return &tls.Certificate{}, nil
	}
}

// explain turns a post-handshake failure into a handshake-class error when
// the server asked for a client certificate that was not sent.
func (a *clientAuth) explain(err *Error) *Error {
	if err.Class == ClassTimeout || !a.requested.Load() || a.sent.Load() {
		return err
	}
	return &Error{Class: ClassHandshake, Op: "client-auth",
		Err: fmt.Errorf("client: the server asked for a client certificate and none was sent: %w", err.Err)}
}
