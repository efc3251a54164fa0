package observe

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"

	"github.com/echlab/echlab/ech"
)

// QUIC versions whose Initial packets Compare decrypts.
const (
	QUICv1 uint32 = 0x00000001 // RFC 9000
	QUICv2 uint32 = 0x6b3343cf // RFC 9369
)

var (
	// RFC 9001 §5.2 and RFC 9369 §3.3.1.
	saltV1 = []byte{0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a}
	saltV2 = []byte{0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb, 0xf9, 0xbd, 0x2e, 0xd9}
)

// ErrQUIC reports a QUIC packet the observer could not read.
var ErrQUIC = errors.New("lab: unreadable QUIC packet")

// quicLabel is ech.ExpandLabel with SHA-256 and an empty context, as QUIC
// uses it for its Initial secrets and keys (RFC 9001 §5.2).
func quicLabel(secret []byte, label string, length int) []byte {
	out, err := ech.ExpandLabel(sha256.New, secret, label, nil, length)
	if err != nil {
		panic(err) // only for label lengths and sizes this file never asks for
	}
	return out
}

// initialSecrets derives the client and server Initial secrets from the
// Destination Connection ID of the client's first Initial packet.
func initialSecrets(version uint32, dcid []byte) (client, server []byte) {
	salt := saltV1
	if version == QUICv2 {
		salt = saltV2
	}
	initial, _ := hkdf.Extract(sha256.New, dcid, salt)
	return quicLabel(initial, "client in", 32), quicLabel(initial, "server in", 32)
}

// initialKeys are the packet protection keys of one direction.
type initialKeys struct {
	key, iv, hpKey []byte
	aead           cipher.AEAD
	hp             cipher.Block
}

func newInitialKeys(version uint32, secret []byte) *initialKeys {
	prefix := "quic "
	if version == QUICv2 {
		prefix = "quicv2 "
	}
	k := &initialKeys{
		key:   quicLabel(secret, prefix+"key", 16),
		iv:    quicLabel(secret, prefix+"iv", 12),
		hpKey: quicLabel(secret, prefix+"hp", 16),
	}
	block, _ := aes.NewCipher(k.key)
	k.aead, _ = cipher.NewGCM(block)
	k.hp, _ = aes.NewCipher(k.hpKey)
	return k
}

// isInitial reports whether the long-header type bits name an Initial packet
// (and whether they name a Retry) for the version.
func longType(version uint32, first byte) (initial, retry bool) {
	t := first >> 4 & 3
	if version == QUICv2 {
		return t == 1, t == 0
	}
	return t == 0, t == 3
}

// readVarint reads a QUIC variable-length integer.
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

// longHeader is the unprotected part of a long-header packet.
type longHeader struct {
	version       uint32
	dcid, scid    []byte
	initial       bool
	retry         bool
	pnOffset      int // offset of the packet number within the packet
	end           int // end of this packet within the datagram
	supportedVers bool
}

// parseLongHeader reads a long header at the start of b. Packets other than
// Initial report their end so that coalesced packets can be skipped.
func parseLongHeader(b []byte) (*longHeader, error) {
	if len(b) < 7 || b[0]&0x80 == 0 {
		return nil, fmt.Errorf("%w: not a long header", ErrQUIC)
	}
	h := &longHeader{version: binary.BigEndian.Uint32(b[1:])}
	off := 5
	for _, cid := range []*[]byte{&h.dcid, &h.scid} {
		if off >= len(b) || int(b[off]) > 20 || off+1+int(b[off]) > len(b) {
			return nil, fmt.Errorf("%w: connection ID length", ErrQUIC)
		}
		*cid = b[off+1 : off+1+int(b[off])]
		off += 1 + int(b[off])
	}
	if h.version == 0 {
		h.end, h.supportedVers = len(b), true
		return h, nil
	}
	if h.version != QUICv1 && h.version != QUICv2 {
		return nil, fmt.Errorf("%w: version %#08x", ErrQUIC, h.version)
	}
	h.initial, h.retry = longType(h.version, b[0])
	if h.retry {
		h.end = len(b)
		return h, nil
	}
	if h.initial {
		tl, n, ok := readVarint(b[off:])
		if !ok || uint64(len(b)-off-n) < tl {
			return nil, fmt.Errorf("%w: token length", ErrQUIC)
		}
		off += n + int(tl)
	}
	length, n, ok := readVarint(b[off:])
	if !ok || uint64(len(b)-off-n) < length || length < 20 {
		return nil, fmt.Errorf("%w: length field", ErrQUIC)
	}
	h.pnOffset = off + n
	h.end = h.pnOffset + int(length)
	return h, nil
}

// unprotect removes header protection and decrypts one Initial packet
// (b holds exactly the packet), returning the packet number and payload.
func (k *initialKeys) unprotect(b []byte, h *longHeader, largest int64) (int64, []byte, error) {
	if h.pnOffset+4+16 > len(b) {
		return 0, nil, fmt.Errorf("%w: too short for a header protection sample", ErrQUIC)
	}
	var mask [16]byte
	k.hp.Encrypt(mask[:], b[h.pnOffset+4:h.pnOffset+4+16])
	hdr := make([]byte, h.pnOffset+4)
	copy(hdr, b)
	hdr[0] ^= mask[0] & 0x0f
	pnLen := int(hdr[0]&3) + 1
	var truncated uint64
	for i := 0; i < pnLen; i++ {
		hdr[h.pnOffset+i] ^= mask[1+i]
		truncated = truncated<<8 | uint64(hdr[h.pnOffset+i])
	}
	pn := decodePacketNumber(largest, truncated, pnLen*8)
	nonce := make([]byte, 12)
	copy(nonce, k.iv)
	for i := 0; i < 8; i++ {
		nonce[11-i] ^= byte(uint64(pn) >> (8 * i))
	}
	aad := hdr[:h.pnOffset+pnLen]
	plain, err := k.aead.Open(nil, nonce, b[h.pnOffset+pnLen:], aad)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: AEAD open failed (wrong keys or corrupt packet)", ErrQUIC)
	}
	return pn, plain, nil
}

// decodePacketNumber is RFC 9000 Appendix A.3.
func decodePacketNumber(largest int64, truncated uint64, bits int) int64 {
	expected := largest + 1
	win := int64(1) << bits
	hwin, mask := win/2, win-1
	candidate := (expected &^ mask) | int64(truncated)
	switch {
	case candidate <= expected-hwin && candidate < (1<<62)-win:
		return candidate + win
	case candidate > expected+hwin && candidate >= win:
		return candidate - win
	}
	return candidate
}

// cryptoChunk is the data of one CRYPTO frame.
type cryptoChunk struct {
	off  uint64
	data []byte
}

// parseInitialFrames collects CRYPTO frames from a decrypted Initial
// payload. Only frames allowed in Initial packets are accepted.
func parseInitialFrames(b []byte) ([]cryptoChunk, error) {
	var out []cryptoChunk
	for len(b) > 0 {
		typ, n, ok := readVarint(b)
		if !ok {
			return out, fmt.Errorf("%w: frame type", ErrQUIC)
		}
		b = b[n:]
		switch {
		case typ == 0x00 || typ == 0x01: // PADDING, PING
		case typ == 0x02 || typ == 0x03: // ACK
			fields := 4
			var rest []byte
			var count uint64
			for i := 0; i < fields; i++ {
				v, n, ok := readVarint(b)
				if !ok {
					return out, fmt.Errorf("%w: ACK frame", ErrQUIC)
				}
				if i == 2 {
					count = v
				}
				b = b[n:]
			}
			if count > uint64(len(b)) {
				return out, fmt.Errorf("%w: ACK range count", ErrQUIC)
			}
			extra := int(count) * 2
			if typ == 0x03 {
				extra += 3
			}
			rest = b
			for i := 0; i < extra; i++ {
				_, n, ok := readVarint(rest)
				if !ok {
					return out, fmt.Errorf("%w: ACK ranges", ErrQUIC)
				}
				rest = rest[n:]
			}
			b = rest
		case typ == 0x06: // CRYPTO
			off, n1, ok1 := readVarint(b)
			l, n2, ok2 := readVarint(b[n1:])
			if !ok1 || !ok2 || uint64(len(b)-n1-n2) < l || off > 1<<32 {
				return out, fmt.Errorf("%w: CRYPTO frame", ErrQUIC)
			}
			out = append(out, cryptoChunk{off: off, data: b[n1+n2 : n1+n2+int(l)]})
			b = b[n1+n2+int(l):]
		case typ == 0x1c || typ == 0x1d: // CONNECTION_CLOSE
			return out, nil
		default:
			return out, fmt.Errorf("%w: frame type %#x is not allowed in Initial packets", ErrQUIC, typ)
		}
	}
	return out, nil
}

// assembleCrypto joins CRYPTO chunks from offset 0 up to the first hole.
func assembleCrypto(chunks []cryptoChunk) []byte {
	sorted := append([]cryptoChunk(nil), chunks...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].off < sorted[j].off })
	var out []byte
	for _, c := range sorted {
		end := c.off + uint64(len(c.data))
		if c.off > uint64(len(out)) {
			break
		}
		if end > uint64(len(out)) {
			out = append(out, c.data[uint64(len(out))-c.off:]...)
		}
		if len(out) >= maxStream {
			break
		}
	}
	return out
}

// quicDir is one direction of a QUIC connection's Initial space.
type quicDir struct {
	keys    *initialKeys
	largest int64
	crypto  []cryptoChunk
	first   bool // an Initial was decrypted
}

// quicConn follows the Initial packets of one QUIC connection as seen on
// the wire: the client's first Initial fixes the keys; a Retry resets them.
type quicConn struct {
	version        uint32
	client, server quicDir
	retry          bool
	initials       int
	warnings       []string
}

// addDatagram reads the coalesced packets of one UDP datagram.
func (q *quicConn) addDatagram(fromClient bool, b []byte) {
	for len(b) > 0 && b[0]&0x80 != 0 {
		h, err := parseLongHeader(b)
		if err != nil {
			q.warn(err.Error())
			return
		}
		pkt := b[:h.end]
		b = b[h.end:]
		switch {
		case h.retry && !fromClient:
			q.retry = true
			q.client.keys, q.server.keys = nil, nil
		case h.initial:
			q.addInitial(fromClient, h, pkt)
		}
	}
}

func (q *quicConn) addInitial(fromClient bool, h *longHeader, pkt []byte) {
	if q.client.keys == nil {
		if !fromClient {
			q.warn("quic: server Initial before any client Initial; cannot derive keys")
			return
		}
		cs, ss := initialSecrets(h.version, h.dcid)
		q.version = h.version
		q.client = quicDir{keys: newInitialKeys(h.version, cs), largest: -1}
		q.server = quicDir{keys: newInitialKeys(h.version, ss), largest: -1}
	}
	d := &q.server
	if fromClient {
		d = &q.client
	}
	pn, plain, err := d.keys.unprotect(pkt, h, d.largest)
	if err != nil {
		q.warn(err.Error())
		return
	}
	q.initials++
	d.first = true
	d.largest = max(d.largest, pn)
	chunks, err := parseInitialFrames(plain)
	for _, c := range chunks {
		// Keep the CRYPTO bytes, not the decrypted packet (mostly PADDING).
		d.crypto = append(d.crypto, cryptoChunk{off: c.off, data: append([]byte(nil), c.data...)})
	}
	if err != nil {
		q.warn(err.Error())
	}
}

func (q *quicConn) warn(s string) {
	if len(q.warnings) < 8 {
		q.warnings = append(q.warnings, s)
	}
}
