package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync"
	"time"
)

// fetchTCP connects over TCP, runs the TLS handshake and sends the request
// over HTTP/2 or HTTP/1.1, as ALPN decided.
func (f *fetcher) fetchTCP(ctx context.Context, conf *tls.Config) error {
	conn, err := f.dialTCP(ctx)
	if err != nil {
		return err
	}
	rec := &helloRecorder{Conn: conn}
	tc := tls.Client(rec, conf)
	hctx, cancel := context.WithTimeout(ctx, f.opts.HandshakeTimeout)
	t0 := time.Now()
	err = tc.HandshakeContext(hctx)
	cancel()
	f.res.HandshakeTime = time.Since(t0)
	f.writeECHConfigKeyLog(rec, conf)
	if err != nil {
		conn.Close()
		return classify("handshake", ClassHandshake, err)
	}
	f.recordState(tc.ConnectionState())
	return f.httpOverTLS(ctx, tc)
}

// dialTCP tries each address in turn, with ConnectTimeout each. The
// connection reports its ClientHello's random when OnClientHello is set.
func (f *fetcher) dialTCP(ctx context.Context) (net.Conn, error) {
	var errs []error
	for _, ap := range f.addrs {
		d := net.Dialer{Timeout: f.opts.ConnectTimeout}
		t0 := time.Now()
		conn, err := d.DialContext(ctx, "tcp", ap.String())
		f.res.ConnectTime = time.Since(t0)
		if err == nil {
			f.res.RemoteAddr = addrString(conn.RemoteAddr())
			return f.withHelloHook(conn), nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, classify("connect", ClassConnect, errors.Join(errs...))
}

// httpOverTLS sends the GET over an established connection, with net/http
// (which speaks HTTP/2 itself when ALPN chose h2).
func (f *fetcher) httpOverTLS(ctx context.Context, tc *tls.Conn) error {
	used := false
	tr := &http.Transport{
		DialTLSContext: func(context.Context, string, string) (net.Conn, error) {
			if used {
				return nil, fmt.Errorf("%w: second connection", ErrUnsupported)
			}
			used = true
			return tc, nil
		},
		ForceAttemptHTTP2:  true,
		DisableCompression: true,
		DisableKeepAlives:  true,
	}
	defer tr.CloseIdleConnections()
	defer tc.Close()
	return f.doRequest(ctx, tr)
}

// doRequest sends the GET with rt, times the first response byte and reads
// the body up to MaxBody.
func (f *fetcher) doRequest(ctx context.Context, rt http.RoundTripper) error {
	// The trace hooks run on the transport's goroutines.
	var mu sync.Mutex
	var sent, first time.Time
	stamp := func(p *time.Time) {
		mu.Lock()
		*p = time.Now()
		mu.Unlock()
	}
	trace := &httptrace.ClientTrace{
		WroteRequest:         func(httptrace.WroteRequestInfo) { stamp(&sent) },
		GotFirstResponseByte: func() { stamp(&first) },
	}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodGet, f.url.String(), nil)
	if err != nil {
		return &Error{Class: ClassConfig, Op: "request", Err: err}
	}
	req.Header.Set("User-Agent", "echlab-client")
	t0 := time.Now()
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return f.auth.explain(classify("request", ClassHTTP, err))
	}
	defer resp.Body.Close()
	mu.Lock()
	f.res.TTFB = ttfb(t0, sent, first, time.Now())
	mu.Unlock()
	f.res.HTTPProto, f.res.Status = resp.Proto, resp.StatusCode
	body, err := io.ReadAll(io.LimitReader(resp.Body, f.opts.MaxBody+1))
	if int64(len(body)) > f.opts.MaxBody {
		body, f.res.Truncated = body[:f.opts.MaxBody], true
	}
	f.res.Body, f.res.Bytes = body, int64(len(body))
	if err != nil {
		return classify("body", ClassHTTP, err)
	}
	f.res.ServerSaw = ParseServerReport(body)
	return nil
}

// ttfb is first-byte minus request-written when the trace saw both, else
// the time RoundTrip took (the response headers' arrival).
func ttfb(start, sent, first, done time.Time) time.Duration {
	if !first.IsZero() {
		if sent.IsZero() || sent.After(first) {
			sent = start
		}
		return first.Sub(sent)
	}
	return done.Sub(start)
}
