package capture

import "encoding/binary"

// GSO/TSO super-packets, as a Linux packet socket with PACKET_VNET_HDR
// delivers them, split back into the packets the wire carries. The parsing
// is portable (FuzzSplitGSO runs everywhere); only the socket that feeds
// it is Linux-only (capture_live_linux.go).

// gso_type values of struct virtio_net_hdr (linux/virtio_net.h).
const (
	gsoNone  = 0
	gsoTCPv4 = 1
	gsoUDP   = 3 // UFO: one big IP fragment train, not split here
	gsoTCPv6 = 4
	gsoUDPL4 = 5    // UDP GSO (UDP_SEGMENT), as QUIC stacks send
	gsoECN   = 0x80 // flag: TCP with ECN (CWR only on the first segment)
)

// vnetHdr is struct virtio_net_hdr, in host byte order.
type vnetHdr struct {
	flags, gsoType                         uint8
	hdrLen, gsoSize, csumStart, csumOffset uint16
}

// splitGSO splits a GSO super-packet (an Ethernet frame carrying IPv4 or
// IPv6 and UDP with UDP_L4 GSO, or TCP with TSO) into the packets the wire
// would carry: gso_size payload bytes each, with IP lengths, the IPv4 id,
// TCP sequence numbers and flags, UDP lengths and all checksums fixed. Any
// other frame comes back alone and unchanged (loopback leaves its
// checksums partial, as tcpdump shows them).
func splitGSO(frame []byte, h vnetHdr) [][]byte {
	typ := h.gsoType &^ gsoECN
	if h.gsoSize == 0 || (typ != gsoUDPL4 && typ != gsoTCPv4 && typ != gsoTCPv6) || len(frame) < 14 {
		return [][]byte{frame}
	}
	l3 := 14
	var l4 int
	var proto byte
	switch binary.BigEndian.Uint16(frame[12:14]) {
	case 0x0800:
		if len(frame) < l3+20 || frame[l3]>>4 != 4 || frame[l3]&0x0f < 5 {
			return [][]byte{frame}
		}
		l4, proto = l3+int(frame[l3]&0x0f)*4, frame[l3+9]
	case 0x86dd:
		if len(frame) < l3+40 || frame[l3]>>4 != 6 {
			return [][]byte{frame}
		}
		l4, proto = l3+40, frame[l3+6]
	default:
		return [][]byte{frame}
	}
	hdrEnd := l4 + 8
	switch {
	case proto == 17 && typ == gsoUDPL4:
	case proto == 6 && typ != gsoUDPL4 && len(frame) >= l4+20:
		hdrEnd = l4 + int(frame[l4+12]>>4)*4
		if hdrEnd < l4+20 {
			return [][]byte{frame}
		}
	default:
		return [][]byte{frame}
	}
	if hdrEnd > len(frame) || len(frame)-hdrEnd <= int(h.gsoSize) {
		return [][]byte{frame}
	}
	payload := frame[hdrEnd:]
	var out [][]byte
	for i, off := 0, 0; off < len(payload); i, off = i+1, off+int(h.gsoSize) {
		chunk := payload[off:min(off+int(h.gsoSize), len(payload))]
		pkt := append(append(make([]byte, 0, hdrEnd+len(chunk)), frame[:hdrEnd]...), chunk...)
		last := off+len(chunk) == len(payload)
		fixSegment(pkt, l3, l4, proto, i, off, last, h.gsoType&gsoECN != 0)
		out = append(out, pkt)
	}
	return out
}

// fixSegment rewrites the headers of segment i (payload offset off) of a
// split super-packet.
func fixSegment(pkt []byte, l3, l4 int, proto byte, i, off int, last, ecn bool) {
	be := binary.BigEndian
	v4 := pkt[l3]>>4 == 4
	if v4 {
		be.PutUint16(pkt[l3+2:], uint16(len(pkt)-l3))
		be.PutUint16(pkt[l3+4:], be.Uint16(pkt[l3+4:])+uint16(i))
		be.PutUint16(pkt[l3+10:], 0)
		be.PutUint16(pkt[l3+10:], ^onesSum(0, pkt[l3:l4]))
	} else {
		be.PutUint16(pkt[l3+4:], uint16(len(pkt)-l4))
	}
	var sumAt int
	if proto == 17 {
		be.PutUint16(pkt[l4+4:], uint16(len(pkt)-l4))
		sumAt = l4 + 6
	} else {
		be.PutUint32(pkt[l4+4:], be.Uint32(pkt[l4+4:])+uint32(off))
		if !last {
			pkt[l4+13] &^= 0x01 | 0x08 // FIN, PSH on the last segment only
		}
		if i > 0 && ecn {
			pkt[l4+13] &^= 0x80 // CWR on the first segment only
		}
		sumAt = l4 + 16
	}
	be.PutUint16(pkt[sumAt:], 0)
	sum := pseudoSum(pkt, l3, l4, proto, v4)
	c := ^onesSum(sum, pkt[l4:])
	if c == 0 && proto == 17 {
		c = 0xffff
	}
	be.PutUint16(pkt[sumAt:], c)
}

// pseudoSum is the ones'-complement sum of the IPv4 or IPv6 pseudo-header.
func pseudoSum(pkt []byte, l3, l4 int, proto byte, v4 bool) uint32 {
	var sum uint32
	if v4 {
		sum = uint32(onesSum(0, pkt[l3+12:l3+20]))
	} else {
		sum = uint32(onesSum(0, pkt[l3+8:l3+40]))
	}
	n := len(pkt) - l4
	return sum + uint32(proto) + uint32(n>>16) + uint32(n&0xffff)
}

// onesSum adds b as big-endian 16-bit words to sum in ones'-complement
// arithmetic and folds the result.
func onesSum(sum uint32, b []byte) uint16 {
	for len(b) >= 2 {
		sum += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return uint16(sum)
}
