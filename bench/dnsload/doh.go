package main

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// dohConn is DoH (RFC 8484) with GET ?dns= and ID 0, over HTTP/3 (one QUIC
// connection) or HTTP/2 (one TLS connection, never a second one: strict
// stream limit). Each connection has its own transport, so C connections
// are C transports.
type dohConn struct {
	rt    http.RoundTripper
	close func() error
	proto int // the HTTP major version every answer must come over
}

func dialDoH(ctx context.Context, cfg *Config, items []item) (*dohConn, error) {
	tc := cfg.TLS.Clone()
	var d dohConn
	if cfg.Transport == DoH3 {
		tc.NextProtos = []string{http3.NextProtoH3}
		tr := &http3.Transport{TLSClientConfig: tc, QUICConfig: &quic.Config{
			HandshakeIdleTimeout: cfg.Timeout, MaxIdleTimeout: 30 * time.Second}}
		d = dohConn{rt: tr, close: tr.Close, proto: 3}
	} else {
		// HTTP/2 only, one connection: further requests wait for a stream.
		var protos http.Protocols
		protos.SetHTTP2(true)
		tr := &http.Transport{TLSClientConfig: tc, Protocols: &protos, MaxConnsPerHost: 1,
			HTTP2: &http.HTTP2Config{StrictMaxConcurrentRequests: true}}
		d = dohConn{rt: tr, close: func() error { tr.CloseIdleConnections(); return nil }, proto: 2}
	}
	// One request sets the connection up; its answer is checked in the run.
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	var buf []byte
	if _, err := d.exchange(ctx, &items[0], 0, &buf); err != nil {
		d.close()
		return nil, fmt.Errorf("dnsload: %s dial %s: %w", cfg.Transport, cfg.Addr, err)
	}
	return &d, nil
}

func (d *dohConn) id(int) uint16 { return 0 }

func (d *dohConn) exchange(ctx context.Context, it *item, _ int, buf *[]byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, it.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header["Accept"] = []string{"application/dns-message"}
	resp, err := d.rt.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != d.proto {
		return nil, fmt.Errorf("%w: answered over %s, want HTTP/%d", errProtocol, resp.Proto, d.proto)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: HTTP status %d", errProtocol, resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/dns-message" {
		return nil, fmt.Errorf("%w: content type %q", errProtocol, ct)
	}
	return readMessage(resp.Body, buf, 65535)
}

func (d *dohConn) Close() error { return d.close() }
