package resolver

import (
	"context"
	"crypto/tls"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// newH3Client returns a DoH client over HTTP/3. It dials the endpoint's
// address itself (never resolving the URL host) and records the QUIC
// handshake in the exchange's Timing; a request that dials no new
// connection is Reused.
func newH3Client(ep *endpoint) *dohClient {
	tr := &http3.Transport{
		TLSClientConfig: ep.tlsConfig(http3.NextProtoH3),
		QUICConfig:      &quic.Config{HandshakeIdleTimeout: ep.opts.Timeout},
	}
	tr.Dial = func(ctx context.Context, _ string, conf *tls.Config, qc *quic.Config) (*quic.Conn, error) {
		start := time.Now()
		conn, err := quic.DialAddr(ctx, ep.addr, conf, qc)
		if tm, ok := ctx.Value(timingKey{}).(*Timing); ok {
			tm.Handshake = time.Since(start)
			if conn != nil {
				tm.ECHAccepted = conn.ConnectionState().TLS.ECHAccepted
			}
		}
		return conn, err
	}
	c := newDoHClient(ep, tr)
	c.close = tr.Close
	return c
}
