package capture

import (
	"encoding/binary"
	"net/netip"
)

// LinkType is a capture's link-layer header type: a LINKTYPE_ value of the
// tcpdump.org registry (draft-ietf-opsawg-pcaplinktype), 16 bits as in a
// pcapng interface description block.
type LinkType uint16

// The link types Read decodes.
const (
	LinkTypeNull      LinkType = 0   // BSD loopback: 4-byte address family, then IP
	LinkTypeEthernet  LinkType = 1   // Ethernet II (Linux "lo" too, with zero MACs)
	LinkTypeRaw       LinkType = 101 // raw IPv4 or IPv6
	LinkTypeLoop      LinkType = 108 // OpenBSD loopback: LinkTypeNull's framing
	LinkTypeLinuxSLL  LinkType = 113 // Linux cooked capture v1
	LinkTypeIPv4      LinkType = 228 // raw IPv4
	LinkTypeIPv6      LinkType = 229 // raw IPv6
	LinkTypeLinuxSLL2 LinkType = 276 // Linux cooked capture v2
)

// dltRaw12 and dltRaw14 are DLT_RAW as some systems number it; files from
// them carry these values instead of LinkTypeRaw.
const (
	dltRaw12 LinkType = 12
	dltRaw14 LinkType = 14
)

// DecodeLink strips the link layer named by lt and decodes IP and TCP/UDP.
func DecodeLink(lt LinkType, b []byte) (*Packet, bool) {
	p := &Packet{}
	if !decodeLink(p, lt, b) {
		return nil, false
	}
	return p, true
}

// decodeLink is DecodeLink into p, which Read reuses for every packet: it
// sets every field but TS.
func decodeLink(p *Packet, lt LinkType, b []byte) bool {
	*p = Packet{}
	switch lt {
	case LinkTypeEthernet:
		if len(b) < 14 {
			return false
		}
		et, rest := binary.BigEndian.Uint16(b[12:]), b[14:]
		for (et == 0x8100 || et == 0x88a8) && len(rest) >= 4 {
			et, rest = binary.BigEndian.Uint16(rest[2:]), rest[4:]
		}
		return decodeEtherType(p, et, rest)
	case LinkTypeLinuxSLL:
		if len(b) < 16 {
			return false
		}
		return decodeEtherType(p, binary.BigEndian.Uint16(b[14:]), b[16:])
	case LinkTypeLinuxSLL2:
		if len(b) < 20 {
			return false
		}
		return decodeEtherType(p, binary.BigEndian.Uint16(b[0:]), b[20:])
	case LinkTypeRaw, dltRaw12, dltRaw14, LinkTypeIPv4, LinkTypeIPv6:
		return decodeIP(p, b)
	case LinkTypeNull, LinkTypeLoop:
		if len(b) < 4 {
			return false
		}
		return decodeIP(p, b[4:])
	}
	return false
}

func decodeEtherType(p *Packet, et uint16, b []byte) bool {
	if et != 0x0800 && et != 0x86dd {
		return false
	}
	return decodeIP(p, b)
}

// decodeIP decodes an IPv4 or IPv6 packet with a TCP or UDP payload.
// Fragments are skipped.
func decodeIP(p *Packet, b []byte) bool {
	if len(b) < 1 {
		return false
	}
	var src, dst netip.Addr
	switch b[0] >> 4 {
	case 4:
		if len(b) < 20 {
			return false
		}
		ihl, total := int(b[0]&0x0f)*4, int(binary.BigEndian.Uint16(b[2:]))
		if ihl < 20 || total < ihl || len(b) < ihl {
			return false
		}
		if total <= len(b) {
			b = b[:total] // drop Ethernet padding
		}
		if frag := binary.BigEndian.Uint16(b[6:]); frag&0x3fff != 0 {
			return false
		}
		p.Proto = b[9]
		src, dst = netip.AddrFrom4([4]byte(b[12:16])), netip.AddrFrom4([4]byte(b[16:20]))
		b = b[ihl:]
	case 6:
		if len(b) < 40 {
			return false
		}
		plen := int(binary.BigEndian.Uint16(b[4:]))
		next := b[6]
		src, dst = netip.AddrFrom16([16]byte(b[8:24])), netip.AddrFrom16([16]byte(b[24:40]))
		b = b[40:]
		if plen <= len(b) {
			b = b[:plen]
		}
		for next == 0 || next == 43 || next == 60 {
			if len(b) < 8 || len(b) < 8+int(b[1])*8 {
				return false
			}
			next, b = b[0], b[8+int(b[1])*8:]
		}
		p.Proto = next
	default:
		return false
	}
	return decodeTransport(p, src, dst, b)
}

func decodeTransport(p *Packet, src, dst netip.Addr, b []byte) bool {
	switch p.Proto {
	case 6:
		if len(b) < 20 {
			return false
		}
		off := int(b[12]>>4) * 4
		if off < 20 || off > len(b) {
			return false
		}
		p.Seq, p.Ack, p.Flags = binary.BigEndian.Uint32(b[4:]), binary.BigEndian.Uint32(b[8:]), b[13]
		p.Payload = b[off:]
	case 17:
		if len(b) < 8 {
			return false
		}
		l := int(binary.BigEndian.Uint16(b[4:]))
		p.Payload = b[8:]
		if l >= 8 && l-8 <= len(p.Payload) {
			p.Payload = p.Payload[:l-8]
		}
	default:
		return false
	}
	p.Src = netip.AddrPortFrom(src.Unmap(), binary.BigEndian.Uint16(b[0:]))
	p.Dst = netip.AddrPortFrom(dst.Unmap(), binary.BigEndian.Uint16(b[2:]))
	return true
}
