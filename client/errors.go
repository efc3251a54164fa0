package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
)

// Class is the kind of failure a fetch ran into. The lab groups results by
// it, so the values are stable strings.
type Class string

// Error classes.
const (
	// ClassConfig is a bad option or an unusable ECHConfigList.
	ClassConfig Class = "config"
	// ClassDNS is a failed lookup: resolver unreachable, NXDOMAIN, no
	// address, or (under fail-closed) no HTTPS record with an ECH config.
	ClassDNS Class = "dns"
	// ClassConnect is a failed TCP connect or QUIC dial that was not a timeout.
	ClassConnect Class = "connect"
	// ClassHandshake is a TLS handshake failure other than the ones below.
	ClassHandshake Class = "tls-handshake"
	// ClassCertificate is a server certificate that failed verification.
	ClassCertificate Class = "invalid-certificate"
	// ClassECHRejected is a server that did not accept ECH.
	ClassECHRejected Class = "ech-rejected"
	// ClassTimeout is any deadline that ran out (connect, handshake, DNS, HTTP).
	ClassTimeout Class = "timeout"
	// ClassHTTP is a failure after the handshake: the request or the body.
	ClassHTTP Class = "http"
)

// Sentinel errors, wrapped by *Error; test them with errors.Is.
var (
	// ErrNoConfig means ECH was asked for but no ECHConfigList was found.
	ErrNoConfig = errors.New("client: no ECH config found")
	// ErrNoHTTPSRecord means the name has no HTTPS record (NODATA or NXDOMAIN
	// at the HTTPS owner name).
	ErrNoHTTPSRecord = errors.New("client: no HTTPS record")
	// ErrNXDomain means the resolver answered NXDOMAIN for an address lookup.
	ErrNXDomain = errors.New("client: name does not exist (NXDOMAIN)")
	// ErrNoAddress means no A/AAAA record or hint gave an address to dial.
	ErrNoAddress = errors.New("client: no address for host")
	// ErrNoResolver means a name had to be looked up but no resolver was given
	// (the system resolver is never used).
	ErrNoResolver = errors.New("client: no resolver configured")
	// ErrAliasLoop means the AliasMode chain was longer than the limit.
	ErrAliasLoop = errors.New("client: HTTPS AliasMode chain too long")
	// ErrDNSRcode means the resolver answered with an error rcode.
	ErrDNSRcode = errors.New("client: DNS error response")
	// ErrECHRejected means the server rejected ECH (see ECHRejectedError).
	ErrECHRejected = errors.New("client: server rejected ECH")
	// ErrUnsupported means the options ask for something the client cannot do.
	ErrUnsupported = errors.New("client: unsupported")
)

// Error is the error every failed fetch returns: its Class says which
// stage failed, Op names the step ("dns", "connect", "handshake", …).
type Error struct {
	Class Class
	Op    string
	Err   error
}

func (e *Error) Error() string {
	return fmt.Sprintf("client: %s (%s): %v", e.Op, e.Class, e.Err)
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// ECHRejectedError reports an ECH rejection. Retried says whether the
// client had already retried once with the server's retry configs, and
// RetryConfigList holds what the server offered (empty when none).
type ECHRejectedError struct {
	RetryConfigList []byte
	Retried         bool
}

func (e *ECHRejectedError) Error() string {
	switch {
	case e.Retried:
		return "client: server rejected ECH again after a retry with its retry configs"
	case len(e.RetryConfigList) == 0:
		return "client: server rejected ECH and sent no retry configs"
	default:
		return "client: server rejected ECH (retry configs offered, retry disabled)"
	}
}

// Is makes errors.Is(err, ErrECHRejected) true.
func (e *ECHRejectedError) Is(target error) bool { return target == ErrECHRejected }

// classify wraps err in an *Error: timeouts, certificate failures and ECH
// rejections get their own class whatever the step; otherwise def is used.
func classify(op string, def Class, err error) *Error {
	var ce *Error
	if errors.As(err, &ce) {
		return ce
	}
	return &Error{Class: classOf(def, err), Op: op, Err: err}
}

func classOf(def Class, err error) Class {
	var (
		rej     *tls.ECHRejectionError
		ours    *ECHRejectedError
		cve     *tls.CertificateVerificationError
		unknown x509.UnknownAuthorityError
		host    x509.HostnameError
		inval   x509.CertificateInvalidError
		ne      net.Error
		op      *net.OpError
	)
	switch {
	case errors.As(err, &rej), errors.As(err, &ours):
		return ClassECHRejected
	case errors.As(err, &cve), errors.As(err, &unknown), errors.As(err, &host), errors.As(err, &inval):
		return ClassCertificate
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return ClassTimeout
	case errors.As(err, &ne) && ne.Timeout():
		return ClassTimeout
	case errors.As(err, &op) && op.Op == "remote error":
		// crypto/tls reports a received alert as a net.OpError "remote
		// error" (for TLS 1.3 client auth, only on the first read).
		return ClassHandshake
	}
	return def
}
