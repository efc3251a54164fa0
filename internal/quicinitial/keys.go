package quicinitial

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
	"slices"

	"github.com/echlab/echlab/ech"
)

// QUIC versions whose Initial packets this package reads.
const (
	V1 uint32 = 0x00000001 // RFC 9000
	V2 uint32 = 0x6b3343cf // RFC 9369
)

var (
	// RFC 9001 §5.2 and RFC 9369 §3.3.1.
	saltV1 = []byte{0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a}
	saltV2 = []byte{0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb, 0xf9, 0xbd, 0x2e, 0xd9}
)

// label is ech.ExpandLabel with SHA-256 and an empty context, as QUIC
// uses it for its Initial secrets and keys (RFC 9001 §5.2).
func label(secret []byte, name string, length int) []byte {
	out, err := ech.ExpandLabel(sha256.New, secret, name, nil, length)
	if err != nil {
		panic(err) // only for label lengths and sizes this file never asks for
	}
	return out
}

// Secrets derives the client and server Initial secrets from the
// Destination Connection ID of the client's first Initial packet. A
// version other than V2 uses V1's salt.
func Secrets(version uint32, dcid []byte) (client, server []byte) {
	salt := saltV1
	if version == V2 {
		salt = saltV2
	}
	initial, _ := hkdf.Extract(sha256.New, dcid, salt)
	return label(initial, "client in", 32), label(initial, "server in", 32)
}

// Keys are the Initial packet protection keys of one direction.
type Keys struct {
	Key, IV, HPKey []byte // AEAD key, IV and header protection key
	AEAD           cipher.AEAD
	HP             cipher.Block
}

// NewKeys expands an Initial secret into the packet protection keys of
// version (AES-128-GCM and AES header protection).
func NewKeys(version uint32, secret []byte) *Keys {
	prefix := "quic "
	if version == V2 {
		prefix = "quicv2 "
	}
	k := &Keys{
		Key:   label(secret, prefix+"key", 16),
		IV:    label(secret, prefix+"iv", 12),
		HPKey: label(secret, prefix+"hp", 16),
	}
	block, _ := aes.NewCipher(k.Key)
	k.AEAD, _ = cipher.NewGCM(block)
	k.HP, _ = aes.NewCipher(k.HPKey)
	return k
}

// Open removes header protection and decrypts one Initial packet (pkt
// holds exactly the packet, h its parsed header), returning the packet
// number and the payload. largest is the largest packet number read so far
// in this direction (-1 before any). pkt is not modified.
func (k *Keys) Open(pkt []byte, h *Header, largest int64) (int64, []byte, error) {
	if h.PNOffset+4+16 > len(pkt) {
		return 0, nil, fmt.Errorf("%w: too short for a header protection sample", ErrPacket)
	}
	var mask [16]byte
	k.HP.Encrypt(mask[:], pkt[h.PNOffset+4:h.PNOffset+4+16])
	hdr := make([]byte, h.PNOffset+4)
	copy(hdr, pkt)
	hdr[0] ^= mask[0] & 0x0f
	pnLen := int(hdr[0]&3) + 1
	var truncated uint64
	for i := 0; i < pnLen; i++ {
		hdr[h.PNOffset+i] ^= mask[1+i]
		truncated = truncated<<8 | uint64(hdr[h.PNOffset+i])
	}
	pn := DecodePacketNumber(largest, truncated, pnLen*8)
	nonce := make([]byte, 12)
	copy(nonce, k.IV)
	for i := 0; i < 8; i++ {
		nonce[11-i] ^= byte(uint64(pn) >> (8 * i))
	}
	aad := hdr[:h.PNOffset+pnLen]
	plain, err := k.AEAD.Open(nil, nonce, pkt[h.PNOffset+pnLen:], aad)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: AEAD open failed (wrong keys or corrupt packet)", ErrPacket)
	}
	return pn, plain, nil
}

// DecodePacketNumber recovers a full packet number from its truncated
// encoding of bits bits, given the largest packet number read so far
// (RFC 9000 Appendix A.3).
func DecodePacketNumber(largest int64, truncated uint64, bits int) int64 {
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

// Protect builds a client Initial packet of version carrying frames (and
// 40 bytes of PADDING, enough for the header protection sample) with a
// 2-byte packet number pn, and applies packet and header protection
// (RFC 9001 §5) with the keys of keyDCID. Its header names dcid, which a
// client's Initials after the server's first one do while keeping the
// keys of the first DCID (RFC 9000 §7.2). It makes Initials for tests.
func Protect(version uint32, keyDCID, dcid []byte, pn int, frames []byte) []byte {
	cs, _ := Secrets(version, keyDCID)
	k := NewKeys(version, cs)
	frames = append(slices.Clip(frames), make([]byte, 40)...)
	typ := byte(0)
	if version == V2 {
		typ = 1
	}
	hdr := []byte{0xc0 | typ<<4 | 1, byte(version >> 24), byte(version >> 16), byte(version >> 8), byte(version), byte(len(dcid))}
	hdr = append(hdr, dcid...)
	length := 2 + len(frames) + 16
	hdr = append(hdr, 0, 0, 0x40|byte(length>>8), byte(length), byte(pn>>8), byte(pn))
	pnOff := len(hdr) - 2
	nonce := slices.Clone(k.IV)
	nonce[10] ^= byte(pn >> 8)
	nonce[11] ^= byte(pn)
	pkt := k.AEAD.Seal(slices.Clone(hdr), nonce, frames, hdr)
	var mask [16]byte
	k.HP.Encrypt(mask[:], pkt[pnOff+4:pnOff+20])
	pkt[0] ^= mask[0] & 0x0f
	pkt[pnOff] ^= mask[1]
	pkt[pnOff+1] ^= mask[2]
	return pkt
}
