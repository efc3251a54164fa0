package conformance

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/echlab/echlab/client"
	"github.com/echlab/echlab/resolver"
)

// Client names a client column of the table.
type Client string

// The clients the runner drives in-process.
const (
	// ClientEchlab is echlab's client (client.Fetch): ECH, fail-closed,
	// one retry with authenticated retry configs.
	ClientEchlab Client = "echlab"
	// ClientGo is a plain Go crypto/tls program: it discovers the HTTPS
	// record with client.Discover, offers ECH when the record has an ech
	// SvcParam (crypto/tls picks the config), retries once with the retry
	// configs of an ECHRejectionError, and connects without ECH when the
	// record has none (SVCB-optional).
	ClientGo Client = "go"
)

// Clients lists the in-process clients, in table order.
func Clients() []Client { return []Client{ClientEchlab, ClientGo} }

// Client timeouts: short, so that a stuck cell shows as a timeout in
// seconds.
const (
	connectTimeout   = 2 * time.Second
	handshakeTimeout = 3 * time.Second
)

// target is where a client goes in one case.
type target struct {
	dnsURL string         // the resolver URL for the case's transport
	port   int            // the relay's port: the URL's and the HTTPS owner's
	roots  *x509.CertPool // the lab CA
	// For the browsers (browser_client.go).
	caFile         string        // the lab CA certificate (PEM)
	do53           string        // the resolver's Do53 address (UDP and TCP) in a Do53 case, else ""
	browserDir     string        // where each browser run gets its folder
	browserTimeout time.Duration // bound of one page load
}

// run runs c once and fills what the client reported into ev.
func (c Client) run(ctx context.Context, t target, ev *Evidence) {
	stub, err := resolver.NewClient(t.dnsURL, resolver.ClientOptions{RootCAs: t.roots})
	if err != nil {
		ev.Error, ev.ErrorClass = err.Error(), string(client.ClassConfig)
		return
	}
	defer stub.Close()
	switch c {
	case ClientEchlab:
		runEchlab(ctx, stub, t, ev)
	case ClientGo:
		runGo(ctx, stub, t, ev)
	case ClientChromium, ClientFirefox:
		runBrowser(ctx, c, t, ev)
	default:
		ev.Error, ev.ErrorClass = fmt.Sprintf("conformance: unknown client %q", c), string(client.ClassConfig)
	}
}

// runEchlab fetches https://secret.lab.test:PORT/ with echlab's client.
func runEchlab(ctx context.Context, stub resolver.Client, t target, ev *Evidence) {
	u := fmt.Sprintf("https://%s:%d/", SecretName, t.port)
	r, err := client.Fetch(ctx, u, client.Options{Resolver: stub, RootCAs: t.roots, ALPN: []string{"http/1.1"},
		ConnectTimeout: connectTimeout, HandshakeTimeout: handshakeTimeout, Timeout: 4 * handshakeTimeout})
	ev.ECHAccepted = r.ECH == client.ECHAccepted
	ev.Retried = r.Retried
	ev.ConfigID = r.ConfigID
	if err != nil {
		ev.Error, ev.ErrorClass = err.Error(), string(r.ErrorClass)
	}
}

// runGo is the plain crypto/tls program (the lab grid's crypto-tls row).
func runGo(ctx context.Context, stub resolver.Client, t target, ev *Evidence) {
	err := goFetch(ctx, stub, t, ev)
	if err != nil {
		ev.Error, ev.ErrorClass = err.Error(), goErrorClass(err)
	}
}

func goFetch(ctx context.Context, stub resolver.Client, t target, ev *Evidence) error {
	d, err := client.Discover(ctx, stub, SecretName, t.port, true)
	if err != nil {
		return err
	}
	if len(d.Addrs) == 0 {
		return fmt.Errorf("go: %w", client.ErrNoAddress)
	}
	addr := net.JoinHostPort(d.Addrs[0].String(), strconv.Itoa(d.Port))
	conf := &tls.Config{ServerName: SecretName, RootCAs: t.roots, NextProtos: []string{"http/1.1"},
		MinVersion: tls.VersionTLS13, EncryptedClientHelloConfigList: d.ConfigList}
	cs, err := handshake(ctx, addr, conf)
	var rej *tls.ECHRejectionError
	if errors.As(err, &rej) && len(rej.RetryConfigList) > 0 {
		conf.EncryptedClientHelloConfigList = rej.RetryConfigList
		ev.Retried = true
		cs, err = handshake(ctx, addr, conf)
	}
	if err != nil {
		return err
	}
	ev.ECHAccepted = cs.ECHAccepted
	return nil
}

// handshake dials addr and runs a TLS handshake.
func handshake(ctx context.Context, addr string, conf *tls.Config) (tls.ConnectionState, error) {
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: connectTimeout}, Config: conf}
	ctx, cancel := context.WithTimeout(ctx, connectTimeout+handshakeTimeout)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState(), nil
}

// goErrorClass names the step a crypto/tls fetch failed at with echlab's
// client classes.
func goErrorClass(err error) string {
	var ce *client.Error
	var rej *tls.ECHRejectionError
	var cve *tls.CertificateVerificationError
	var ne net.Error
	switch {
	case errors.As(err, &ce):
		return string(ce.Class)
	case errors.As(err, &rej):
		return string(client.ClassECHRejected)
	case errors.As(err, &cve):
		return string(client.ClassCertificate)
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return string(client.ClassTimeout)
	case errors.Is(err, client.ErrNoAddress):
		return string(client.ClassDNS)
	}
	return string(client.ClassHandshake)
}
