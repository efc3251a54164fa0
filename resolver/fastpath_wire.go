package resolver

import "encoding/binary"

// Wire constants of the queries the UDP fast path takes.
const (
	maxNameWire = 255 // octets of a domain name on the wire (RFC 1035 §3.1)
	// maxFastKey is the longest cache key: a question (name, type,
	// class) and the variant octet.
	maxFastKey = maxNameWire + 4 + 1
	optRRLen   = 11 // an OPT record with the root name and no options
	flagQR     = 1 << 15
	flagRD     = 1 << 8
	ednsDO     = 1 << 15 // the DO bit in the OPT TTL's flags
)

// Bits of the variant octet that ends a cache key: everything besides the
// question that changes the answer of Authority.answer.
const (
	variantRD   = 1 << 0 // RD=1 (copied into the answer)
	variantEDNS = 1 << 1 // the query has an OPT record
	variantDO   = 1 << 2 // and its DO bit is set
)

// fastQuery is a query the fast path understood.
type fastQuery struct {
	id   [2]byte
	key  []byte // question and variant octet, in the caller's buffer
	size int    // the largest answer the client takes, as udpSize
}

// parseFastQuery reads b if it is a plain query the fast path can answer
// exactly: QR=0, opcode QUERY, one question whose name has no compression
// pointer, no answer or authority records, and at most an OPT record with
// version 0, no extended rcode, no flag but DO and no options (padding,
// cookies, ECS and the rest go to the slow path), and nothing after it.
// The key is built in keyBuf. ok is false for anything else.
func parseFastQuery(b []byte, maxSize int, keyBuf *[maxFastKey]byte) (q fastQuery, ok bool) {
	if len(b) < headerLen+5 {
		return q, false
	}
	flags := binary.BigEndian.Uint16(b[2:])
	if flags&flagQR != 0 || (flags>>11)&0xf != 0 {
		return q, false
	}
	if binary.BigEndian.Uint16(b[4:]) != 1 || binary.BigEndian.Uint16(b[6:]) != 0 ||
		binary.BigEndian.Uint16(b[8:]) != 0 || binary.BigEndian.Uint16(b[10:]) > 1 {
		return q, false
	}
	end, ok := skipName(b, headerLen)
	if !ok || end+4 > len(b) {
		return q, false
	}
	end += 4 // type and class
	variant := byte(0)
	if flags&flagRD != 0 {
		variant |= variantRD
	}
	q.size = 512
	if binary.BigEndian.Uint16(b[10:]) == 1 {
		opt := b[end:]
		if len(opt) != optRRLen || opt[0] != 0 || binary.BigEndian.Uint16(opt[1:]) != 41 ||
			binary.BigEndian.Uint32(opt[5:])&^ednsDO != 0 || binary.BigEndian.Uint16(opt[9:]) != 0 {
			return q, false
		}
		variant |= variantEDNS
		if binary.BigEndian.Uint32(opt[5:])&ednsDO != 0 {
			variant |= variantDO
		}
		q.size = max(512, min(int(binary.BigEndian.Uint16(opt[3:])), maxSize))
		end += optRRLen
	}
	if end != len(b) {
		return q, false
	}
	n := copy(keyBuf[:], b[headerLen:end-optLenIf(variant)])
	keyBuf[n] = variant
	q.key = keyBuf[:n+1]
	q.id = [2]byte{b[0], b[1]}
	return q, true
}

// optLenIf is the length of the OPT record that a query of this variant
// ends with.
func optLenIf(variant byte) int {
	if variant&variantEDNS != 0 {
		return optRRLen
	}
	return 0
}

// skipName returns the offset after the uncompressed name at b[off:], or
// false for a pointer, an extended label type or a name over 255 octets.
func skipName(b []byte, off int) (int, bool) {
	start := off
	for off < len(b) {
		l := int(b[off])
		switch {
		case l == 0:
			return off + 1, off+1-start <= maxNameWire
		case l&0xc0 != 0:
			return 0, false
		}
		off += 1 + l
		if off-start > maxNameWire {
			return 0, false
		}
	}
	return 0, false
}
