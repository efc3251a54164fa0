package resolver

import (
	"context"
	"net"

	"github.com/miekg/dns"
)

// Transport names, as they appear in the query log and in metrics.
const (
	TransportUDP  = "udp"
	TransportTCP  = "tcp"
	TransportDoT  = "dot"
	TransportDoH  = "doh"  // HTTP/1.1 and HTTP/2
	TransportDoH3 = "doh3" // HTTP/3
	TransportDoQ  = "doq"
	TransportJSON = "json" // the application/dns-json endpoint
)

// Meta says how a query arrived.
type Meta struct {
	Transport string   // one of the Transport constants
	Client    net.Addr // the peer, when known
	// UDPSize is the largest response the transport can carry in one
	// message: the EDNS(0) size over UDP, 65535 on stream transports.
	UDPSize int
}

// Handler answers one DNS query. Every transport calls the same Handler;
// it never returns nil (a malformed query gets FORMERR, a refused one
// REFUSED). Transports apply truncation and padding, not the Handler.
type Handler interface {
	Answer(ctx context.Context, req *dns.Msg, meta Meta) *dns.Msg
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, req *dns.Msg, meta Meta) *dns.Msg

// Answer calls f.
func (f HandlerFunc) Answer(ctx context.Context, req *dns.Msg, meta Meta) *dns.Msg {
	return f(ctx, req, meta)
}
