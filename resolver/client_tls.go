package resolver

import (
	"context"
	"crypto/tls"
	"net"
	"time"
)

// newTLSClient returns a DoT client: the TCP client's connection reuse
// with a TLS handshake (ALPN dot) after connect, and padded queries.
func newTLSClient(ep *endpoint) *streamClient {
	c := &streamClient{ep: ep, protocol: "tls", encrypted: true}
	c.dial = func(ctx context.Context, tm *Timing) (net.Conn, error) {
		raw, err := c.dialTCP(ctx, tm)
		if err != nil {
			return nil, err
		}
		conn := tls.Client(raw, ep.tlsConfig(alpnDoT))
		start := time.Now()
		if err := conn.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, err
		}
		tm.Handshake = time.Since(start)
		return conn, nil
	}
	return c
}
