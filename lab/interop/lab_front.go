package interop

import (
	"fmt"
	"net/netip"

	"github.com/echlab/echlab/lab/capture"
	"github.com/echlab/echlab/resolver"
)

// Roles of the relays a fronted lab puts in front of its listeners (the
// adversary's policies select flows by them).
const (
	RoleServer capture.Role = "https/shared"
	RoleDoH    capture.Role = "dns/doh"
)

// listen is the resolver's listeners: DoH, and with a front also Do53
// (UDP and TCP) for the browsers that may fall back to the system
// resolver.
func (l *Lab) listen() resolver.Listen {
	ls := resolver.Listen{DoH: "127.0.0.1:0"}
	if l.front != nil {
		ls.UDP, ls.TCP = "127.0.0.1:0", "127.0.0.1:0"
	}
	return ls
}

// frontServer puts a relay pair (TCP and UDP on one port) in front of the
// ECH server and makes its port the lab's: the URLs the browsers load and
// the HTTPS records the resolver publishes (_PORT._https.NAME) name the
// relay, so every handshake passes the adversary.
func (l *Lab) frontServer() error {
	if l.front == nil {
		return nil
	}
	addr, err := l.front.RelayPair(RoleServer, l.server.Addr(), l.server.Addr())
	if err != nil {
		return err
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return fmt.Errorf("interop: relay address %q: %w", addr, err)
	}
	l.Port = int(ap.Port())
	return nil
}

// frontResolver puts relays in front of the resolver's DoH (the URL the
// browsers are given becomes the relay's; its certificate is for
// 127.0.0.1, any port) and its Do53 listeners.
func (l *Lab) frontResolver() error {
	if l.front == nil {
		return nil
	}
	doh, err := l.front.RelayTCP(RoleDoH, l.resolver.Addr(resolver.TransportDoH).String())
	if err != nil {
		return err
	}
	ap, err := netip.ParseAddrPort(doh)
	if err != nil {
		return fmt.Errorf("interop: relay address %q: %w", doh, err)
	}
	l.DoHPort = int(ap.Port())
	l.DoHURL = "https://" + doh + resolver.DoHPath
	if l.Do53UDP, err = l.front.RelayUDP(capture.RoleDo53, l.resolver.Addr(resolver.TransportUDP).String()); err != nil {
		return err
	}
	l.Do53TCP, err = l.front.RelayTCP(capture.RoleDo53, l.resolver.Addr(resolver.TransportTCP).String())
	return err
}
