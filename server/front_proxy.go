package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"

	"golang.org/x/crypto/cryptobyte"
)

// The split front tells its backends what it did with a connection in a
// PROXY protocol version 2 header (haproxy's proxy-protocol.txt §2.2)
// written before the ClientHello it forwards: the binary signature, the
// version/command byte (0x21: version 2, PROXY), the family byte (TCP over
// IPv4 or IPv6), the length of the rest, the source and destination
// addresses and ports, and type-length-value fields. One application TLV
// (frontTLVType) carries the front's ECH verdict, authenticated by an
// HMAC (front_tlv.go).

// proxySig is the 12-byte PROXY v2 signature.
var proxySig = []byte("\r\n\r\n\x00\r\nQUIT\n")

// PROXY v2 header constants.
const (
	proxyFixedLen  = 16   // signature, version/command, family, length
	proxyV2Command = 0x21 // version 2, command PROXY
	proxyTCP4      = 0x11 // AF_INET, SOCK_STREAM
	proxyTCP6      = 0x21 // AF_INET6, SOCK_STREAM
	// maxProxyBody bounds the part after the fixed 16 bytes that a
	// backend reads: the addresses and a few TLVs fit in far less.
	maxProxyBody = 512
)

// ErrFrontHeader reports a PROXY v2 header a backend could not parse.
var ErrFrontHeader = errors.New("server: bad front header")

// proxyHeader is a parsed PROXY v2 header.
type proxyHeader struct {
	src, dst netip.AddrPort
	addrs    []byte           // family byte and address block as sent, for the HMAC
	tlvs     map[uint8][]byte // last value of each TLV type
}

// marshalProxyHeader builds a PROXY v2 header for a TCP connection from
// src to dst carrying the given TLVs (type, value).
func marshalProxyHeader(src, dst netip.AddrPort, tlvs ...tlv) ([]byte, error) {
	addrs := proxyAddrs(src, dst)
	b := cryptobyte.NewBuilder(append([]byte(nil), proxySig...))
	b.AddUint8(proxyV2Command)
	b.AddUint8(addrs[0])
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		b.AddBytes(addrs[1:])
		for _, t := range tlvs {
			b.AddUint8(t.typ)
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(t.value) })
		}
	})
	out, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("server: front header: %w", err)
	}
	if len(out)-proxyFixedLen > maxProxyBody {
		return nil, fmt.Errorf("server: front header of %d bytes is over %d", len(out), maxProxyBody)
	}
	return out, nil
}

// tlv is one PROXY v2 type-length-value field.
type tlv struct {
	typ   uint8
	value []byte
}

// proxyAddrs returns the family byte followed by the address block:
// source address, destination address, source port, destination port.
func proxyAddrs(src, dst netip.AddrPort) []byte {
	s, d := src.Addr().Unmap(), dst.Addr().Unmap()
	fam := byte(proxyTCP4)
	if !s.Is4() || !d.Is4() {
		fam, s, d = proxyTCP6, netip.AddrFrom16(s.As16()), netip.AddrFrom16(d.As16())
	}
	out := append([]byte{fam}, s.AsSlice()...)
	out = append(out, d.AsSlice()...)
	return append(out, byte(src.Port()>>8), byte(src.Port()), byte(dst.Port()>>8), byte(dst.Port()))
}

// readProxyHeader reads a PROXY v2 header from r, no more bytes than it
// holds. Bytes that do not start with the signature are returned as
// notProxy (already read, to be replayed) with a nil header.
func readProxyHeader(r io.Reader) (h *proxyHeader, notProxy []byte, err error) {
	var fixed [proxyFixedLen]byte
	if _, err := io.ReadFull(r, fixed[:1]); err != nil {
		return nil, nil, err
	}
	if fixed[0] != proxySig[0] {
		return nil, fixed[:1], nil
	}
	if _, err := io.ReadFull(r, fixed[1:]); err != nil {
		return nil, nil, fmt.Errorf("%w: fixed part: %w", ErrFrontHeader, err)
	}
	if !bytes.Equal(fixed[:12], proxySig) {
		return nil, fixed[:], nil
	}
	n := int(fixed[14])<<8 | int(fixed[15])
	if n > maxProxyBody {
		return nil, nil, fmt.Errorf("%w: length %d is over %d", ErrFrontHeader, n, maxProxyBody)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, nil, fmt.Errorf("%w: body: %w", ErrFrontHeader, err)
	}
	h, err = parseProxyHeader(fixed[12], fixed[13], body)
	return h, nil, err
}

// parseProxyHeader parses the version/command and family bytes and the
// body of a PROXY v2 header.
func parseProxyHeader(verCmd, fam byte, body []byte) (*proxyHeader, error) {
	if verCmd != proxyV2Command {
		return nil, fmt.Errorf("%w: version/command %#02x is not v2 PROXY", ErrFrontHeader, verCmd)
	}
	alen := 0
	switch fam {
	case proxyTCP4:
		alen = 12
	case proxyTCP6:
		alen = 36
	default:
		return nil, fmt.Errorf("%w: family %#02x is not TCP over IPv4 or IPv6", ErrFrontHeader, fam)
	}
	if len(body) < alen {
		return nil, fmt.Errorf("%w: address block of %d bytes, want %d", ErrFrontHeader, len(body), alen)
	}
	a := body[:alen]
	ipLen := (alen - 4) / 2
	src, _ := netip.AddrFromSlice(a[:ipLen])
	dst, _ := netip.AddrFromSlice(a[ipLen : 2*ipLen])
	p := a[2*ipLen:]
	h := &proxyHeader{
		src:   netip.AddrPortFrom(src.Unmap(), uint16(p[0])<<8|uint16(p[1])),
		dst:   netip.AddrPortFrom(dst.Unmap(), uint16(p[2])<<8|uint16(p[3])),
		addrs: append([]byte{fam}, a...),
		tlvs:  map[uint8][]byte{},
	}
	s := cryptobyte.String(body[alen:])
	for !s.Empty() {
		var typ uint8
		var val cryptobyte.String
		if !s.ReadUint8(&typ) || !s.ReadUint16LengthPrefixed(&val) {
			return nil, fmt.Errorf("%w: TLV truncated", ErrFrontHeader)
		}
		h.tlvs[typ] = val
	}
	return h, nil
}

// addrPort turns a net.Addr into a netip.AddrPort, or the zero value.
func addrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}
