package conformance

import (
	"context"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/echlab/echlab/client"
	"github.com/echlab/echlab/internal/gotls"
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
	r, err := gotls.Fetch(ctx, stub, SecretName, t.port, gotls.Options{RootCAs: t.roots,
		ConnectTimeout: connectTimeout, HandshakeTimeout: handshakeTimeout})
	ev.ECHAccepted, ev.Retried = r.ECHAccepted, r.Retried
	if err != nil {
		ev.Error, ev.ErrorClass = err.Error(), string(gotls.ErrorClass(err))
	}
}
