package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"net/netip"

	"github.com/echlab/echlab/ech"
	"golang.org/x/crypto/cryptobyte"
)

// frontTLVType is the PROXY v2 TLV type of the front's verdict, from the
// range proxy-protocol.txt leaves to applications (0xE0–0xEF).
const frontTLVType = 0xE0

// frontTLVVersion is the layout version, the TLV value's first byte.
const frontTLVVersion = 1

// frontMACLabel starts the HMAC input so that the key is never used for
// anything else.
const frontMACLabel = "echlab front verdict v1\x00"

// frontVerdict is what the split front did with a connection, as it tells
// the backend.
type frontVerdict struct {
	ECH      string // the front's ECH status: ECHAccepted when it opened a ClientHelloOuter
	OuterSNI string // the server_name of the ClientHello the client sent
	ConfigID *uint8 // the ECH config id the client named; nil without ECH
	Suite    ech.CipherSuite
}

// The TLV value is
//
//	uint8  version (1)
//	opaque ech_status<0..255>
//	opaque outer_sni<0..255>
//	uint8  has_config_id (0 or 1)
//	uint8  config_id
//	uint16 kdf_id, aead_id
//	opaque mac[32]  HMAC-SHA256(secret, label || family || addresses || value before mac || inner random)
//
// The MAC binds the verdict to the client address in the same header and
// to the random of the ClientHello that follows it, so a client can neither
// forge one nor replay a captured one in front of another ClientHello.

// sealFrontHeader builds the PROXY v2 header the front sends before the
// ClientHello whose random is given.
func sealFrontHeader(secret []byte, src, dst netip.AddrPort, v frontVerdict, random []byte) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint8(frontTLVVersion)
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(v.ECH)) })
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(v.OuterSNI)) })
	if v.ConfigID != nil {
		b.AddUint8(1)
		b.AddUint8(*v.ConfigID)
	} else {
		b.AddUint16(0)
	}
	b.AddUint16(v.Suite.KDF)
	b.AddUint16(v.Suite.AEAD)
	body, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("server: front verdict: %w", err)
	}
	value := append(body, frontMAC(secret, proxyAddrs(src, dst), body, random)...)
	return marshalProxyHeader(src, dst, tlv{frontTLVType, value})
}

// frontMAC is the verdict's HMAC-SHA256.
func frontMAC(secret, addrs, body, random []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(frontMACLabel))
	m.Write(addrs)
	m.Write(body)
	m.Write(random)
	return m.Sum(nil)
}

// openFrontVerdict checks the verdict TLV of h against the secret and the
// random of the ClientHello that followed the header, and decodes it.
func openFrontVerdict(secret []byte, h *proxyHeader, random []byte) (*frontVerdict, error) {
	value, ok := h.tlvs[frontTLVType]
	if !ok {
		return nil, fmt.Errorf("%w: no verdict TLV %#02x", ErrFrontHeader, frontTLVType)
	}
	if len(value) < sha256.Size+1 {
		return nil, fmt.Errorf("%w: verdict TLV of %d bytes", ErrFrontHeader, len(value))
	}
	body, mac := value[:len(value)-sha256.Size], value[len(value)-sha256.Size:]
	if !hmac.Equal(mac, frontMAC(secret, h.addrs, body, random)) {
		return nil, fmt.Errorf("%w: verdict HMAC does not verify", ErrFrontHeader)
	}
	s := cryptobyte.String(body)
	var ver, hasID, id uint8
	var status, sni cryptobyte.String
	var v frontVerdict
	if !s.ReadUint8(&ver) || ver != frontTLVVersion || !s.ReadUint8LengthPrefixed(&status) ||
		!s.ReadUint8LengthPrefixed(&sni) || !s.ReadUint8(&hasID) || !s.ReadUint8(&id) ||
		!s.ReadUint16(&v.Suite.KDF) || !s.ReadUint16(&v.Suite.AEAD) || !s.Empty() || hasID > 1 {
		return nil, fmt.Errorf("%w: verdict TLV layout", ErrFrontHeader)
	}
	v.ECH, v.OuterSNI = string(status), string(sni)
	if hasID == 1 {
		v.ConfigID = &id
	}
	return &v, nil
}
