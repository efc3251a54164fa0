package resolver

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// ErrHTTPStatus is returned when a DoH server answers with a status other
// than 200 or with a body that is not a DNS message.
var ErrHTTPStatus = errors.New("resolver: doh: server did not answer with a DNS message")

// dohClient is DoH (RFC 8484) over an http.RoundTripper: HTTP/1.1 or
// HTTP/2 (newHTTPSClient) or HTTP/3 (newH3Client). Queries go out with ID
// 0 and padded; the response gets the caller's ID back.
type dohClient struct {
	ep     *endpoint
	url    url.URL // the request URL: https, the URL's host and path
	client *http.Client
	close  func() error
}

func newHTTPSClient(ep *endpoint) *dohClient {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return ep.opts.Dialer.DialContext(ctx, network, ep.addr)
		},
		TLSClientConfig:     ep.tlsConfig(),
		TLSHandshakeTimeout: ep.opts.Timeout,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   !ep.opts.HTTP1Only,
		Protocols:           new(http.Protocols),
	}
	tr.Protocols.SetHTTP1(true)
	tr.Protocols.SetHTTP2(!ep.opts.HTTP1Only)
	if ep.opts.HTTP1Only {
		tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
	}
	c := newDoHClient(ep, tr)
	c.close = func() error { tr.CloseIdleConnections(); return nil }
	return c
}

func newDoHClient(ep *endpoint, rt http.RoundTripper) *dohClient {
	u := *ep.url
	u.Scheme = "https"
	if u.Path == "" {
		u.Path = DoHPath
	}
	return &dohClient{ep: ep, url: u, client: &http.Client{
		Transport: rt,
		// A DoH server does not redirect; following one could leak the
		// query to another host.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (c *dohClient) Address() string { return c.ep.Address() }

func (c *dohClient) Close() error { return c.close() }

func (c *dohClient) Exchange(ctx context.Context, m *dns.Msg) (*dns.Msg, error) {
	resp, _, err := c.exchangeTimed(ctx, m)
	return resp, err
}

func (c *dohClient) exchangeTimed(ctx context.Context, m *dns.Msg) (*dns.Msg, Timing, error) {
	var tm Timing
	ctx, cancel := c.ep.deadline(ctx)
	defer cancel()
	q, err := c.ep.query(m, true, 0)
	if err != nil {
		return nil, tm, err
	}
	wire, err := q.Pack()
	if err != nil {
		return nil, tm, err
	}
	tm.QuerySize = len(wire)
	req, err := c.request(withTiming(ctx, &tm), wire)
	if err != nil {
		return nil, tm, err
	}
	start := time.Now()
	hr, err := c.client.Do(req)
	if err != nil {
		return nil, tm, err
	}
	defer hr.Body.Close()
	tm.Protocol = hr.Proto
	if hr.ProtoMajor == 3 {
		tm.Reused = tm.Handshake == 0
	}
	resp, n, err := readDoHResponse(hr)
	if err != nil {
		return nil, tm, err
	}
	tm.RTT = time.Since(start) - tm.Connect - tm.Handshake
	tm.ReplySize = n
	resp.Id = m.Id
	return resp, tm, nil
}

// request builds the GET or POST request carrying wire.
func (c *dohClient) request(ctx context.Context, wire []byte) (*http.Request, error) {
	u := c.url
	var req *http.Request
	var err error
	if c.ep.opts.UseGET {
		v := u.Query()
		v.Set("dns", base64.RawURLEncoding.EncodeToString(wire))
		u.RawQuery = v.Encode()
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	} else {
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(wire))
		if err == nil {
			req.Header.Set("Content-Type", mediaDNSMessage)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadUpstream, err)
	}
	req.Header.Set("Accept", mediaDNSMessage)
	return req, nil
}

// readDoHResponse checks status and media type and unpacks the body.
func readDoHResponse(hr *http.Response) (*dns.Msg, int, error) {
	body, err := io.ReadAll(io.LimitReader(hr.Body, maxMessage+1))
	if err != nil {
		return nil, 0, err
	}
	if hr.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("%w: %s: %s", ErrHTTPStatus, hr.Status, firstLine(body))
	}
	if mt, _, _ := mime.ParseMediaType(hr.Header.Get("Content-Type")); mt != mediaDNSMessage {
		return nil, 0, fmt.Errorf("%w: content type %q", ErrHTTPStatus, hr.Header.Get("Content-Type"))
	}
	m := new(dns.Msg)
	if err := m.Unpack(body); err != nil {
		return nil, 0, fmt.Errorf("resolver: doh: unpacking response: %w", err)
	}
	return m, len(body), nil
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\n")
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// timingKey carries the *Timing of an exchange in its request context,
// for the HTTP/3 dialer.
type timingKey struct{}

// withTiming records connect and handshake times into tm through
// httptrace (HTTP/1.1, HTTP/2) and the context (HTTP/3's dialer).
func withTiming(ctx context.Context, tm *Timing) context.Context {
	var connStart, tlsStart time.Time
	trace := &httptrace.ClientTrace{
		ConnectStart:      func(string, string) { connStart = time.Now() },
		ConnectDone:       func(string, string, error) { tm.Connect = time.Since(connStart) },
		TLSHandshakeStart: func() { tlsStart = time.Now() },
		TLSHandshakeDone: func(st tls.ConnectionState, _ error) {
			tm.Handshake = time.Since(tlsStart)
			tm.ECHAccepted = st.ECHAccepted
		},
		GotConn: func(info httptrace.GotConnInfo) { tm.Reused = info.Reused },
	}
	return context.WithValue(httptrace.WithClientTrace(ctx, trace), timingKey{}, tm)
}
