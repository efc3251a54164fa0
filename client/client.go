package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// fetcher carries the state of one Fetch.
type fetcher struct {
	opts  Options
	url   *url.URL
	host  string // URL host without port or brackets
	port  int    // effective port (record port, else URL port)
	addrs []netip.AddrPort
	res   *Result
	start time.Time
	auth  *clientAuth // of the current connection
}

// Fetch discovers rawURL's ECH config, connects, fetches rawURL with GET and
// returns the record of what happened. The Result is never nil: on failure
// it holds what was learnt plus ErrorClass and Error, and the error is an
// *Error whose Class says what failed.
func Fetch(ctx context.Context, rawURL string, opts Options) (*Result, error) {
	f := &fetcher{start: time.Now(), res: &Result{URL: rawURL, Mode: opts.Mode, Policy: opts.Policy,
		ConfigSource: SourceNone, DNSTransport: opts.DNSTransport, DNSServer: opts.DNSServer}}
	err := f.fetch(ctx, rawURL, opts)
	f.res.Total = time.Since(f.start)
	if err != nil {
		e := classify("fetch", ClassHandshake, err)
		f.res.ErrorClass, f.res.Error = e.Class, e.Error()
		return f.res, e
	}
	return f.res, nil
}

func (f *fetcher) fetch(ctx context.Context, rawURL string, opts Options) error {
	o, err := opts.withDefaults()
	if err != nil {
		return &Error{Class: ClassConfig, Op: "options", Err: err}
	}
	f.opts = o
	f.labelResolver()
	f.res.Mode, f.res.Policy, f.res.Transport = o.Mode, o.Policy, "tcp"
	if o.HTTP3 {
		f.res.Transport = "quic"
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	if err := f.parseURL(rawURL); err != nil {
		return err
	}
	f.res.InnerSNI = f.serverName()
	d, err := f.discover(ctx)
	if err != nil {
		return err
	}
	if err := f.chooseAddrs(d); err != nil {
		return err
	}
	switch o.Mode {
	case ModeBaseline:
		f.res.ECH, f.res.OuterSNI = ECHNone, f.res.InnerSNI
		return f.connect(ctx, nil)
	case ModeGREASE:
		return f.grease(ctx)
	}
	return f.fetchECH(ctx, d)
}

// labelResolver fills DNSServer and DNSTransport from a resolver that
// knows its URL (the resolver package's clients do) when they are not set.
func (f *fetcher) labelResolver() {
	a, ok := f.opts.Resolver.(interface{ Address() string })
	if !ok {
		return
	}
	addr := a.Address()
	if f.res.DNSServer == "" {
		f.res.DNSServer = addr
	}
	if u, err := url.Parse(addr); err == nil && f.res.DNSTransport == "" {
		f.res.DNSTransport = u.Scheme
	}
}

func (f *fetcher) parseURL(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return &Error{Class: ClassConfig, Op: "url", Err: err}
	}
	if u.Scheme != "https" || u.Hostname() == "" {
		return &Error{Class: ClassConfig, Op: "url", Err: fmt.Errorf("%w: %q is not an https:// URL with a host", ErrUnsupported, rawURL)}
	}
	f.url, f.host, f.port = u, strings.TrimSuffix(u.Hostname(), "."), 443
	if p := u.Port(); p != "" {
		if f.port, err = strconv.Atoi(p); err != nil || f.port < 1 || f.port > 65535 {
			return &Error{Class: ClassConfig, Op: "url", Err: fmt.Errorf("%w: port %q", ErrUnsupported, p)}
		}
	}
	return nil
}

func (f *fetcher) serverName() string {
	if f.opts.ServerName != "" {
		return f.opts.ServerName
	}
	return f.host
}

// discover runs the HTTPS and address lookups when a resolver is set. It
// returns an empty Discovery without one.
func (f *fetcher) discover(ctx context.Context) (*Discovery, error) {
	_, hostIsIP := netip.ParseAddr(f.host)
	needAddrs := f.opts.ConnectTo == "" && hostIsIP != nil
	if f.opts.Resolver == nil {
		if needAddrs {
			return nil, &Error{Class: ClassDNS, Op: "dns", Err: fmt.Errorf("%w to look up %s, and no address to connect to", ErrNoResolver, f.host)}
		}
		return &Discovery{Port: f.port, Target: f.host}, nil
	}
	d, err := Discover(ctx, f.opts.Resolver, f.host, f.port, needAddrs)
	f.res.Discovery, f.res.DNSTime = d, d.Elapsed
	if err != nil {
		return d, err
	}
	f.port = d.Port
	return d, nil
}

// chooseAddrs sets the addresses to dial: ConnectTo, else the discovered
// ones, else the URL host when it is an IP literal.
func (f *fetcher) chooseAddrs(d *Discovery) error {
	port := uint16(f.port)
	if c := f.opts.ConnectTo; c != "" {
		ap, err := netip.ParseAddrPort(c)
		if err != nil {
			a, aerr := netip.ParseAddr(strings.Trim(c, "[]"))
			if aerr != nil {
				return &Error{Class: ClassConfig, Op: "connect-to", Err: fmt.Errorf("%w: %q is not IP or IP:port", ErrUnsupported, c)}
			}
			ap = netip.AddrPortFrom(a, port)
		}
		f.addrs = []netip.AddrPort{ap}
		return nil
	}
	if a, err := netip.ParseAddr(f.host); err == nil {
		f.addrs = []netip.AddrPort{netip.AddrPortFrom(a, port)}
		return nil
	}
	for _, a := range d.Addrs {
		f.addrs = append(f.addrs, netip.AddrPortFrom(a, port))
	}
	if len(f.addrs) == 0 {
		return &Error{Class: ClassDNS, Op: "dns", Err: fmt.Errorf("%w: %s", ErrNoAddress, d.Target)}
	}
	return nil
}

// tlsConfig builds the client config; configList non-nil turns ECH on.
func (f *fetcher) tlsConfig(configList []byte) *tls.Config {
	o := f.opts
	c := &tls.Config{
		ServerName:         f.serverName(),
		RootCAs:            o.RootCAs,
		Certificates:       o.Certificates,
		NextProtos:         o.ALPN,
		CurvePreferences:   o.Groups,
		InsecureSkipVerify: o.InsecureSkipVerify,
		KeyLogWriter:       o.KeyLog,
		MinVersion:         tls.VersionTLS12,
	}
	f.auth = &clientAuth{}
	c.GetClientCertificate = f.auth.hook(o.Certificates)
	if configList != nil {
		c.EncryptedClientHelloConfigList = configList
		c.MinVersion = tls.VersionTLS13
	}
	return c
}

// connect runs one connection and request, over TCP or QUIC.
func (f *fetcher) connect(ctx context.Context, configList []byte) error {
	if f.opts.HTTP3 {
		return f.fetchQUIC(ctx, f.tlsConfig(configList))
	}
	return f.fetchTCP(ctx, f.tlsConfig(configList))
}

// recordState copies the negotiated parameters into the result.
func (f *fetcher) recordState(cs tls.ConnectionState) {
	r := f.res
	r.HandshakeComplete = cs.HandshakeComplete
	r.Version = tls.VersionName(cs.Version)
	r.Cipher = tls.CipherSuiteName(cs.CipherSuite)
	if cs.CurveID != 0 {
		r.Group = cs.CurveID.String()
	}
	r.ALPN = cs.NegotiatedProtocol
	r.ClientCertRequested, r.ClientCertSent = f.auth.requested.Load(), f.auth.sent.Load()
}

// isRejection reports whether err is crypto/tls's ECH rejection.
func isRejection(err error) (*tls.ECHRejectionError, bool) {
	var rej *tls.ECHRejectionError
	ok := errors.As(err, &rej)
	return rej, ok
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}
