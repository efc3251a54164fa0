package adversary

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/echlab/echlab/lab/capture"
)

// Roles the policies look at.
const (
	roleDoH      capture.Role = "dns/doh"
	roleDoH3     capture.Role = "dns/doh3"
	roleHTTPSPfx              = "https/"
)

// stream reports whether p acts on a TCP connection whose first bytes
// read as h, or a QUIC flow whose Initials carried h, with the verdict and
// a detail for the log.
func (p Policy) stream(f capture.Flow, h hello) (capture.Verdict, string, bool) {
	switch p.Kind {
	case BlockSNI:
		if h.ok && nameMatches(p.Name, h.sni) {
			return p.Verdict, "SNI " + h.sni, true
		}
	case BlockECH:
		if h.ech {
			return p.Verdict, "ClientHello carries encrypted_client_hello", true
		}
	case BlockECHPublic:
		if h.ech && nameMatches(p.Name, h.sni) {
			return p.Verdict, "encrypted_client_hello with SNI " + h.sni, true
		}
	case BlockECHSize:
		if h.ech && !slices.Contains(p.Sizes, h.payloadLen) {
			return p.Verdict, fmt.Sprintf("ECH payload of %d bytes is not a GREASE size", h.payloadLen), true
		}
	case BlockDoH:
		if p.dohTargetMatches(f, h, roleDoH) {
			return p.Verdict, "DoH server", true
		}
	case RstAfterHello:
		if h.ech {
			return capture.ResetAfterReply, "ClientHello carries encrypted_client_hello", true
		}
	}
	return capture.Pass, "", false
}

// datagram reports whether p discards a UDP datagram of flow f (either
// way), and how.
func (p Policy) datagram(f capture.Flow) (capture.Verdict, bool) {
	switch p.Kind {
	case DropUDP:
		if p.Port == HTTPSPort && strings.HasPrefix(string(f.Role), roleHTTPSPfx) ||
			p.Port != HTTPSPort && (f.Relay.Port() == p.Port || backendPort(f.Backend) == p.Port) {
			return capture.Drop, true
		}
	case BlockDoH:
		if p.Name == "" && p.dohTargetMatches(f, hello{}, roleDoH3) {
			return p.Verdict, true
		}
	}
	return capture.Pass, false
}

// dohTargetMatches applies block-doh's target: the role when it has none,
// else the relay's or backend's address (and port, when given), else the
// ClientHello's SNI.
func (p Policy) dohTargetMatches(f capture.Flow, h hello, role capture.Role) bool {
	switch {
	case p.Name != "":
		return h.ok && nameMatches(p.Name, h.sni)
	case p.Addr.IsValid():
		return p.addrMatches(f.Relay) || p.addrMatches(backendAddr(f.Backend))
	}
	return f.Role == role
}

func (p Policy) addrMatches(ap netip.AddrPort) bool {
	return ap.IsValid() && ap.Addr().Unmap() == p.Addr && (p.Port == 0 || ap.Port() == p.Port)
}

// backendAddr reads a backend "host:port" whose host is an IP address.
func backendAddr(backend string) netip.AddrPort {
	ap, err := netip.ParseAddrPort(backend)
	if err != nil {
		return netip.AddrPort{}
	}
	return ap
}

// backendPort is the port of a backend "host:port" (0 if unreadable).
func backendPort(backend string) uint16 {
	_, port, err := net.SplitHostPort(backend)
	if err != nil {
		return 0
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return 0
	}
	return uint16(n)
}
