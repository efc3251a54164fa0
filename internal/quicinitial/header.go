package quicinitial

import (
	"encoding/binary"
	"fmt"
)

// Header is the part of a long-header packet readable without keys.
type Header struct {
	Version  uint32
	DCID     []byte // points into the packet
	SCID     []byte // points into the packet
	Initial  bool   // an Initial packet of Version
	Retry    bool   // a Retry packet of Version
	PNOffset int    // offset of the (protected) packet number; 0 for Retry and Version Negotiation
	End      int    // end of this packet within the datagram
	// VersionNegotiation says the packet is a Version Negotiation packet
	// (version 0); End is then the datagram's end.
	VersionNegotiation bool
}

// longType reports whether the long-header type bits name an Initial packet
// (and whether they name a Retry) for the version.
func longType(version uint32, first byte) (initial, retry bool) {
	t := first >> 4 & 3
	if version == V2 {
		return t == 1, t == 0
	}
	return t == 0, t == 3
}

// readVarint reads a QUIC variable-length integer (RFC 9000 §16).
func readVarint(b []byte) (v uint64, n int, ok bool) {
	if len(b) == 0 {
		return 0, 0, false
	}
	n = 1 << (b[0] >> 6)
	if len(b) < n {
		return 0, 0, false
	}
	v = uint64(b[0] & 0x3f)
	for i := 1; i < n; i++ {
		v = v<<8 | uint64(b[i])
	}
	return v, n, true
}

// ParseHeader reads a long header at the start of b, a datagram or what is
// left of it after coalesced packets. Packets other than Initial report
// their End too, so that the caller can skip them. Versions other than V1
// and V2 (and 0, Version Negotiation) are an error wrapping ErrPacket.
func ParseHeader(b []byte) (*Header, error) {
	if len(b) < 7 || b[0]&0x80 == 0 {
		return nil, fmt.Errorf("%w: not a long header", ErrPacket)
	}
	h := &Header{Version: binary.BigEndian.Uint32(b[1:])}
	off := 5
	for _, cid := range []*[]byte{&h.DCID, &h.SCID} {
		if off >= len(b) || int(b[off]) > 20 || off+1+int(b[off]) > len(b) {
			return nil, fmt.Errorf("%w: connection ID length", ErrPacket)
		}
		*cid = b[off+1 : off+1+int(b[off])]
		off += 1 + int(b[off])
	}
	if h.Version == 0 {
		h.End, h.VersionNegotiation = len(b), true
		return h, nil
	}
	if h.Version != V1 && h.Version != V2 {
		return nil, fmt.Errorf("%w: version %#08x", ErrPacket, h.Version)
	}
	h.Initial, h.Retry = longType(h.Version, b[0])
	if h.Retry {
		h.End = len(b)
		return h, nil
	}
	if h.Initial {
		tl, n, ok := readVarint(b[off:])
		if !ok || uint64(len(b)-off-n) < tl {
			return nil, fmt.Errorf("%w: token length", ErrPacket)
		}
		off += n + int(tl)
	}
	length, n, ok := readVarint(b[off:])
	if !ok || uint64(len(b)-off-n) < length || length < 20 {
		return nil, fmt.Errorf("%w: length field", ErrPacket)
	}
	h.PNOffset = off + n
	h.End = h.PNOffset + int(length)
	return h, nil
}
