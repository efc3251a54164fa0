package client

import (
	"context"
	"crypto/tls"
	"io"
	"net/url"
	"testing"

	"github.com/echlab/echlab/resolver"
	"github.com/miekg/dns"
)

// Discovery through every transport of the resolver package's stub client,
// against the resolver package's own listeners.
func TestDiscoveryOverResolverTransports(t *testing.T) {
	l := newLab(t)
	key, list := newKey(t, 11)
	port := startTLS(t, l.serverTLS(echKeys(key)))
	z := newZone(t, echRecord("secret.lab.test.", ".", port, list, "h2"), "secret.lab.test. 60 IN A 127.0.0.1")
	h := resolver.HandlerFunc(func(_ context.Context, req *dns.Msg, _ resolver.Meta) *dns.Msg { return z.answer(req) })
	tlsOpts := resolver.TLSListenerOptions{Certificates: []tls.Certificate{l.cert}}

	var urls []string
	closeLater := func(c io.Closer, u string) {
		t.Cleanup(func() { c.Close() })
		urls = append(urls, u)
	}
	udp, err := resolver.StartUDP(h, "127.0.0.1:0", 1232)
	must(t, err)
	closeLater(udp, "udp://"+udp.Addr().String())
	tcp, err := resolver.StartTCP(h, "127.0.0.1:0")
	must(t, err)
	closeLater(tcp, "tcp://"+tcp.Addr().String())
	dot, err := resolver.StartDoT(h, tlsOpts)
	must(t, err)
	closeLater(dot, "tls://"+dot.Addr().String())
	doh, err := resolver.StartDoH(h, resolver.DoHOptions{TLSListenerOptions: tlsOpts})
	must(t, err)
	closeLater(doh, doh.URL())
	doh3, err := resolver.StartDoH3(h, resolver.DoHOptions{TLSListenerOptions: tlsOpts})
	must(t, err)
	closeLater(doh3, doh3.URL())
	doq, err := resolver.StartDoQ(h, resolver.DoQOptions{TLSListenerOptions: tlsOpts})
	must(t, err)
	closeLater(doq, doq.URL())

	for _, u := range urls {
		scheme := mustScheme(t, u)
		t.Run(scheme, func(t *testing.T) {
			rc, err := resolver.NewClient(u, resolver.ClientOptions{RootCAs: l.ca.Pool()})
			must(t, err)
			defer rc.Close()
			r := mustFetch(t, "https://secret.lab.test/", Options{Resolver: rc, RootCAs: l.ca.Pool()})
			if r.ECH != ECHAccepted || r.ConfigSource != SourceDNS || *r.ConfigID != 11 {
				t.Fatalf("ech=%s source=%s", r.ECH, r.ConfigSource)
			}
			if r.DNSTransport != scheme || r.DNSServer != u || r.DNSTime <= 0 {
				t.Fatalf("dns transport %q server %q time %v", r.DNSTransport, r.DNSServer, r.DNSTime)
			}
			wantSaw(t, r, "secret.lab.test", true)
		})
	}
}

func mustScheme(t *testing.T, u string) string {
	p, err := url.Parse(u)
	must(t, err)
	return p.Scheme
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
