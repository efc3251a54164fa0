package ech

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"

	"golang.org/x/crypto/cryptobyte"
)

// Address types of the address_set ESNIKeys extension (draft-03 §4.2.1).
const (
	esniAddressV4 uint8 = 4
	esniAddressV6 uint8 = 6
)

// ParseAddressSet decodes the body of an address_set extension: a
// non-empty list of IPv4 and IPv6 addresses.
func ParseAddressSet(b []byte) ([]netip.Addr, error) {
	const st, field = "AddressSet", "address_set"
	s := cryptobyte.String(b)
	var list cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&list) || !s.Empty() || list.Empty() {
		return nil, malformed(st, field)
	}
	var out []netip.Addr
	for !list.Empty() {
		var typ uint8
		if !list.ReadUint8(&typ) {
			return nil, malformed(st, field)
		}
		var ip []byte
		switch typ {
		case esniAddressV4:
			if !list.ReadBytes(&ip, 4) {
				return nil, malformed(st, "ipv4Address")
			}
		case esniAddressV6:
			if !list.ReadBytes(&ip, 16) {
				return nil, malformed(st, "ipv6Address")
			}
		default:
			return nil, invalid(st, "address_type", fmt.Sprintf("%d is neither 4 nor 6", typ))
		}
		a, _ := netip.AddrFromSlice(ip)
		out = append(out, a)
	}
	return out, nil
}

// MarshalAddressSet encodes addresses as an address_set extension body.
func MarshalAddressSet(addrs []netip.Addr) ([]byte, error) {
	if len(addrs) == 0 {
		return nil, invalid("AddressSet", "address_set", "empty")
	}
	var b cryptobyte.Builder
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, a := range addrs {
			if a.Is4() || a.Is4In6() {
				b.AddUint8(esniAddressV4)
				v := a.Unmap().As4()
				b.AddBytes(v[:])
			} else {
				b.AddUint8(esniAddressV6)
				v := a.As16()
				b.AddBytes(v[:])
			}
		}
	})
	return b.Bytes()
}

// AddressSet returns the addresses of the address_set extension, or nil
// and no error when there is none.
func (k *ESNIKeys) AddressSet() ([]netip.Addr, error) {
	for _, e := range k.Extensions {
		if e.Type == ESNIExtAddressSet {
			return ParseAddressSet(e.Data)
		}
	}
	return nil, nil
}

// TXT returns the value published in the _esni.NAME TXT record: the
// standard base64 of the ESNIKeys bytes.
func (k *ESNIKeys) TXT() string { return base64.StdEncoding.EncodeToString(k.Raw) }

// DecodeESNIKeysText turns the forms in which ESNIKeys are pasted into
// bytes: a base64 TXT value (standard or URL alphabet, padding optional),
// quoted, possibly split into several quoted strings or given as a whole
// TXT record line ("_esni.example.com. 300 IN TXT \"/wG…\""); hex; or the
// RFC 3597 generic form "\# 68 ff01…" dig prints for an ESNI RR.
func DecodeESNIKeysText(text string) ([]byte, error) {
	s := strings.TrimSpace(text)
	if i := strings.Index(s, `\#`); i >= 0 {
		f := strings.Fields(s[i+2:])
		if len(f) < 2 {
			return nil, invalid("ESNIKeys", "text", `"\#" without length and hex data`)
		}
		return decodeHexESNI(strings.Join(f[1:], ""))
	}
	if strings.Contains(s, `"`) {
		s = joinQuoted(s)
	} else if f := strings.Fields(s); len(f) > 1 {
		s = f[len(f)-1] // "… IN TXT value" without quotes
	}
	s = strings.Join(strings.Fields(s), "")
	if b, err := decodeHexESNI(s); err == nil {
		return b, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding,
		base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) > 0 {
			return b, nil
		}
	}
	return nil, invalid("ESNIKeys", "text", "neither base64 nor hex ESNIKeys")
}

// decodeHexESNI accepts hex only if it starts with a known ESNIKeys
// version, so that base64 made only of hex digits is not misread.
func decodeHexESNI(s string) ([]byte, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) < 2 {
		return nil, invalid("ESNIKeys", "text", "bad hex")
	}
	if v := uint16(b[0])<<8 | uint16(b[1]); v != ESNIVersionDraft02 && v != ESNIVersionDraft03 {
		return nil, invalid("ESNIKeys", "text", "hex does not start with an ESNIKeys version")
	}
	return b, nil
}

// joinQuoted concatenates the contents of the double-quoted strings in s,
// as a TXT record's character-strings are joined.
func joinQuoted(s string) string {
	var out strings.Builder
	parts := strings.Split(s, `"`)
	for i := 1; i < len(parts); i += 2 {
		out.WriteString(parts[i])
	}
	return out.String()
}
