package ech

import "fmt"

// PaddingMode selects how Seal pads EncodedClientHelloInner.
type PaddingMode int

// Padding modes. The zero value is the scheme RFC 9849 §6.1.3 recommends.
const (
	// PaddingRecommended pads the server name up to the config's
	// maximum_name_length (or adds maximum_name_length+9 bytes when there is
	// no server_name), then rounds the total up to a multiple of 32.
	PaddingRecommended PaddingMode = iota
	// PaddingNone adds no padding, so the payload length leaks the inner
	// ClientHello's length.
	PaddingNone
	// PaddingFixed pads the encoded inner ClientHello to exactly Size bytes,
	// and fails if it is already longer.
	PaddingFixed
	// PaddingBlock rounds the encoded inner ClientHello up to a multiple of
	// Size bytes.
	PaddingBlock
)

// Padding is a padding policy. The zero value is PaddingRecommended.
type Padding struct {
	Mode PaddingMode
	Size int // target length for PaddingFixed, block size for PaddingBlock
}

// Length returns how many zero bytes to append to an EncodedClientHelloInner
// of encodedLen bytes that encodes inner, for a config whose
// maximum_name_length is maxNameLen.
func (p Padding) Length(inner *ClientHello, encodedLen int, maxNameLen uint8) (int, error) {
	switch p.Mode {
	case PaddingRecommended:
		return recommendedPadding(inner.ServerName, encodedLen, int(maxNameLen)), nil
	case PaddingNone:
		return 0, nil
	case PaddingFixed:
		if encodedLen > p.Size {
			return 0, invalid("EncodedClientHelloInner", "zeros",
				fmt.Sprintf("encoded inner ClientHello is %d bytes, more than the fixed size %d", encodedLen, p.Size))
		}
		return p.Size - encodedLen, nil
	case PaddingBlock:
		if p.Size <= 0 {
			return 0, invalid("Padding", "Size", "block size must be positive")
		}
		return (p.Size - encodedLen%p.Size) % p.Size, nil
	}
	return 0, invalid("Padding", "Mode", fmt.Sprintf("unknown mode %d", p.Mode))
}

// recommendedPadding is the scheme of RFC 9849 §6.1.3.
func recommendedPadding(serverName string, encodedLen, maxNameLen int) int {
	pad := maxNameLen + 9
	if serverName != "" {
		pad = max(0, maxNameLen-len(serverName))
	}
	l := encodedLen + pad
	return pad + 31 - (l-1)%32
}
