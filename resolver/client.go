package resolver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Client is a DNS stub client for one upstream over one transport. Create
// one with NewClient.
type Client interface {
	// Exchange sends m and returns the response. m is not modified.
	Exchange(ctx context.Context, m *dns.Msg) (*dns.Msg, error)
	// Address returns the upstream's URL.
	Address() string
	// Close releases the client's connections.
	Close() error
}

// Timing says how long the parts of one exchange took. Fields a transport
// does not have stay zero.
type Timing struct {
	Connect   time.Duration // TCP connect (0 for UDP and QUIC, or when reused)
	Handshake time.Duration // TLS or QUIC handshake (0 when reused)
	RTT       time.Duration // query written to response read
	Total     time.Duration // the whole exchange, as the caller saw it
	Reused    bool          // an existing connection carried the query
	// Protocol is what carried the exchange: udp, tcp, tls, doq, or the
	// HTTP version (HTTP/1.1, HTTP/2.0, HTTP/3.0).
	Protocol    string
	ECHAccepted bool // the TLS or QUIC handshake accepted ECH
	TCPFallback bool // udp: the answer was truncated and retried over TCP
	QuerySize   int  // octets of the query as sent (after padding)
	ReplySize   int  // octets of the response
}

// timedExchanger is implemented by every client NewClient returns.
type timedExchanger interface {
	exchangeTimed(ctx context.Context, m *dns.Msg) (*dns.Msg, Timing, error)
}

// ExchangeTimed is Exchange that also reports the exchange's Timing. For a
// Client not made by NewClient only Total is measured.
func ExchangeTimed(ctx context.Context, c Client, m *dns.Msg) (*dns.Msg, Timing, error) {
	start := time.Now()
	if t, ok := c.(timedExchanger); ok {
		resp, tm, err := t.exchangeTimed(ctx, m)
		tm.Total = time.Since(start)
		return resp, tm, err
	}
	resp, err := c.Exchange(ctx, m)
	return resp, Timing{Total: time.Since(start)}, err
}

// ClientOptions configures NewClient. The zero value works for an
// upstream given by IP address with a certificate from the system roots.
type ClientOptions struct {
	// RootCAs verifies the server's certificate; nil means system roots.
	RootCAs *x509.CertPool
	// ServerName is the SNI and the name verified; "" means the URL host.
	ServerName string
	// InsecureSkipVerify skips certificate verification.
	InsecureSkipVerify bool
	// Timeout bounds each exchange; 0 means 5 s.
	Timeout time.Duration
	// Bootstrap is the IP address to dial when the URL host is a name
	// (the system resolver is never used). Empty with a named host is an
	// error.
	Bootstrap string
	// Dialer dials TCP and UDP; nil means a zero net.Dialer.
	Dialer *net.Dialer
	// ECHConfigList, when set, makes DoT, DoH and DoQ offer Encrypted
	// Client Hello with it (tls.Config.EncryptedClientHelloConfigList).
	ECHConfigList []byte
	// KeyLogWriter receives TLS secrets in SSLKEYLOGFILE format.
	KeyLogWriter io.Writer
	// ConfigureTLS, when set, may adjust the tls.Config last.
	ConfigureTLS func(*tls.Config)
	// UseGET makes DoH send GET ?dns= requests; the default is POST.
	UseGET bool
	// HTTP1Only makes https:// offer only http/1.1 (default: h2 and
	// http/1.1, the server chooses).
	HTTP1Only bool
	// NoPadding turns off query padding on encrypted transports (on by
	// default: queries padded to a multiple of 128 octets, RFC 8467).
	NoPadding bool
}

// Errors of NewClient.
var (
	ErrUnsupportedScheme = errors.New("resolver: unsupported upstream scheme")
	ErrNeedBootstrap     = errors.New("resolver: upstream host is a name and no bootstrap address is given")
	ErrBadUpstream       = errors.New("resolver: malformed upstream URL")
)

// NewClient returns a Client for the upstream rawURL, by scheme:
//
//	udp://host:port                  Do53 over UDP, retried over TCP when truncated
//	tcp://host:port                  Do53 over TCP
//	tls://host:port                  DoT (RFC 7858), default port 853
//	https://host:port/dns-query      DoH over HTTP/2 or HTTP/1.1 (RFC 8484), POST unless UseGET
//	h3://host:port/dns-query         DoH over HTTP/3
//	quic://host:port                 DoQ (RFC 9250), default port 853
//
// A URL without a scheme is taken as udp://. Hosts must be IP literals
// unless opts.Bootstrap gives the address to dial.
func NewClient(rawURL string, opts ClientOptions) (Client, error) {
	if !strings.Contains(rawURL, "://") {
		rawURL = "udp://" + rawURL
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadUpstream, err)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.Dialer == nil {
		opts.Dialer = &net.Dialer{}
	}
	ports := map[string]string{"udp": "53", "tcp": "53", "tls": "853", "https": "443", "h3": "443", "quic": "853"}
	port, ok := ports[u.Scheme]
	if !ok {
		return nil, fmt.Errorf("%w %q (want udp, tcp, tls, https, h3 or quic)", ErrUnsupportedScheme, u.Scheme)
	}
	ep, err := newEndpoint(u, port, opts)
	if err != nil {
		return nil, err
	}
	switch u.Scheme {
	case "udp":
		return &udpClient{ep: ep}, nil
	case "tcp":
		return newTCPClient(ep), nil
	case "tls":
		return newTLSClient(ep), nil
	case "https":
		return newHTTPSClient(ep), nil
	case "h3":
		return newH3Client(ep), nil
	default:
		return newQUICClient(ep), nil
	}
}

// endpoint is what every client needs: where to dial and how.
type endpoint struct {
	url    *url.URL
	addr   string // ip:port to dial
	server string // the URL host, for SNI and verification
	opts   ClientOptions
}

func newEndpoint(u *url.URL, defPort string, opts ClientOptions) (*endpoint, error) {
	host, port := u.Hostname(), u.Port()
	if host == "" {
		return nil, fmt.Errorf("%w: %q has no host", ErrBadUpstream, u.String())
	}
	if port == "" {
		port = defPort
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		if opts.Bootstrap == "" {
			return nil, fmt.Errorf("%w: %s", ErrNeedBootstrap, host)
		}
		if ip, err = netip.ParseAddr(opts.Bootstrap); err != nil {
			return nil, fmt.Errorf("%w: bootstrap %q is not an IP address", ErrBadUpstream, opts.Bootstrap)
		}
	}
	return &endpoint{url: u, addr: net.JoinHostPort(ip.String(), port), server: host, opts: opts}, nil
}

// Address returns the upstream's URL.
func (e *endpoint) Address() string { return e.url.String() }

// tlsConfig builds the client tls.Config for the given ALPN protocols.
func (e *endpoint) tlsConfig(alpn ...string) *tls.Config {
	o := e.opts
	conf := &tls.Config{
		RootCAs:                        o.RootCAs,
		ServerName:                     e.server,
		InsecureSkipVerify:             o.InsecureSkipVerify,
		NextProtos:                     alpn,
		KeyLogWriter:                   o.KeyLogWriter,
		EncryptedClientHelloConfigList: o.ECHConfigList,
		MinVersion:                     tls.VersionTLS12,
	}
	if o.ServerName != "" {
		conf.ServerName = o.ServerName
	}
	if len(o.ECHConfigList) > 0 {
		conf.MinVersion = tls.VersionTLS13
	}
	if o.ConfigureTLS != nil {
		o.ConfigureTLS(conf)
	}
	return conf
}

// query returns the message to send: a copy of m, padded on encrypted
// transports unless padding is off, with its ID set to id when id >= 0.
func (e *endpoint) query(m *dns.Msg, encrypted bool, id int) (*dns.Msg, error) {
	q := m.Copy()
	if id >= 0 {
		q.Id = uint16(id)
	}
	if encrypted && !e.opts.NoPadding {
		if err := padQuery(q); err != nil {
			return nil, err
		}
	}
	return q, nil
}

// deadline applies the exchange timeout to ctx.
func (e *endpoint) deadline(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, e.opts.Timeout)
}

// ErrIDMismatch is returned when a response does not answer the query.
var ErrIDMismatch = errors.New("resolver: response ID does not match the query")
