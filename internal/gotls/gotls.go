// Package gotls is the lab's plain Go crypto/tls client: the program an
// application writes with Go's own ECH support. It looks the HTTPS record
// up with echlab's client.Discover (Go has no HTTPS-record resolver),
// offers ECH with the record's config list when there is one, retries
// once with the server's retry configs, and connects without ECH when the
// record has none, as an SVCB-optional client may (RFC 9848 §5.1 makes it
// SVCB-reliant only once it has seen an ech SvcParam). The adversary
// grid's crypto-tls row and the conformance suite's go column both run it.
package gotls

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/echlab/echlab/client"
)

// Options configure Fetch.
type Options struct {
	RootCAs          *x509.CertPool // the CA the server's certificate chains to
	KeyLog           io.Writer      // NSS key log of every handshake, or nil
	ConnectTimeout   time.Duration  // bound of the TCP connect (required)
	HandshakeTimeout time.Duration  // bound of the TLS handshake after it (required)
}

// Result is what one Fetch learnt.
type Result struct {
	ECHAccepted bool // the last handshake accepted ECH
	Retried     bool // a second handshake used the server's retry configs
}

// Fetch discovers name's HTTPS record for port through ex and runs a TLS
// 1.3 handshake (ALPN http/1.1) with the discovered endpoint, retrying
// once with the retry configs of an ECH rejection.
func Fetch(ctx context.Context, ex client.Exchanger, name string, port int, o Options) (Result, error) {
	var r Result
	d, err := client.Discover(ctx, ex, name, port, true)
	if err != nil {
		return r, err
	}
	if len(d.Addrs) == 0 {
		return r, fmt.Errorf("crypto/tls: %w", client.ErrNoAddress)
	}
	addr := net.JoinHostPort(d.Addrs[0].String(), strconv.Itoa(d.Port))
	conf := &tls.Config{ServerName: name, RootCAs: o.RootCAs, NextProtos: []string{"http/1.1"},
		MinVersion: tls.VersionTLS13, KeyLogWriter: o.KeyLog, EncryptedClientHelloConfigList: d.ConfigList}
	cs, err := handshake(ctx, addr, conf, o)
	var rej *tls.ECHRejectionError
	if errors.As(err, &rej) && len(rej.RetryConfigList) > 0 {
		conf.EncryptedClientHelloConfigList = rej.RetryConfigList
		r.Retried = true
		cs, err = handshake(ctx, addr, conf, o)
	}
	if err != nil {
		return r, err
	}
	r.ECHAccepted = cs.ECHAccepted
	return r, nil
}

// handshake dials addr and runs a TLS handshake within the timeouts.
func handshake(ctx context.Context, addr string, conf *tls.Config, o Options) (tls.ConnectionState, error) {
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: o.ConnectTimeout}, Config: conf}
	ctx, cancel := context.WithTimeout(ctx, o.ConnectTimeout+o.HandshakeTimeout)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState(), nil
}

// ErrorClass names the step a fetch failed at with echlab's client
// classes: the class of a client.Error, or for a crypto/tls error the
// class found from it.
func ErrorClass(err error) client.Class {
	var ce *client.Error
	if errors.As(err, &ce) {
		return ce.Class
	}
	var rej *tls.ECHRejectionError
	var cve *tls.CertificateVerificationError
	var ne net.Error
	var oe *net.OpError
	switch {
	case errors.As(err, &rej):
		return client.ClassECHRejected
	case errors.As(err, &cve):
		return client.ClassCertificate
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return client.ClassTimeout
	case errors.Is(err, client.ErrNoAddress), errors.Is(err, client.ErrNXDomain), errors.Is(err, client.ErrDNSRcode):
		return client.ClassDNS
	case errors.As(err, &oe) && oe.Op == "dial":
		return client.ClassConnect
	}
	return client.ClassHandshake
}
