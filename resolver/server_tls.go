package resolver

import (
	"crypto/tls"
	"fmt"
	"net"
)

// alpnDoT is the ALPN protocol id of DNS over TLS (RFC 7858, registered by
// RFC 8310).
const alpnDoT = "dot"

// StartDoT listens on o.Addr ("" means 127.0.0.1:0) and serves DNS over TLS
// (RFC 7858), offering ALPN "dot". Responses are padded with the RFC 8467
// block-length policy when the query carries a Padding option. It uses
// the default timeouts.
func StartDoT(h Handler, o TLSListenerOptions) (*StreamServer, error) {
	return startDoTTimeouts(h, o, Timeouts{})
}

// startDoTTimeouts is StartDoT with timeouts (see serveStreamTimeouts).
func startDoTTimeouts(h Handler, o TLSListenerOptions, t Timeouts) (*StreamServer, error) {
	conf, err := o.ServerConfig(alpnDoT)
	if err != nil {
		return nil, fmt.Errorf("resolver: dot: %w", err)
	}
	ln, err := net.Listen("tcp", o.addr())
	if err != nil {
		return nil, fmt.Errorf("resolver: dot: %w", err)
	}
	return serveStreamTimeouts(tls.NewListener(ln, conf), h, TransportDoT, true, t), nil
}
