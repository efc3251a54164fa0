package ech

import (
	"fmt"
	"slices"

	"golang.org/x/crypto/cryptobyte"
)

// Errors of the inner ClientHello, each also matching ErrInvalid.
var (
	// ErrBadPadding: the padding after the encoded ClientHelloInner is not all zeros.
	ErrBadPadding error = &subError{"ech: nonzero padding in EncodedClientHelloInner", ErrInvalid}
	// ErrOuterExtensions: ech_outer_extensions breaks a rule of RFC 9849 §5.1.
	ErrOuterExtensions error = &subError{"ech: illegal ech_outer_extensions", ErrInvalid}
	// ErrInnerType: ClientHelloInner lacks an encrypted_client_hello of type inner.
	ErrInnerType error = &subError{"ech: ClientHelloInner not marked inner", ErrInvalid}
)

// subError is a sentinel that is also a case of a broader sentinel.
type subError struct {
	msg    string
	parent error
}

func (e *subError) Error() string { return e.msg }
func (e *subError) Unwrap() error { return e.parent }

// EncodeClientHelloInner builds EncodedClientHelloInner (RFC 9849 §5.1)
// from a ClientHelloInner: legacy_session_id emptied, the extensions whose
// types are listed in compress replaced by one ech_outer_extensions
// extension, then padding zero bytes. The compressed extensions must be
// contiguous in inner; they are referenced in inner's order. Whoever builds
// the ClientHelloOuter must copy them there in the same relative order.
func EncodeClientHelloInner(inner *ClientHello, compress []uint16, padding int) ([]byte, error) {
	exts, err := compressExtensions(inner.Extensions, compress)
	if err != nil {
		return nil, err
	}
	if padding < 0 {
		return nil, invalid("EncodedClientHelloInner", "zeros", "negative padding")
	}
	enc := *inner
	enc.SessionID, enc.Extensions = nil, exts
	msg, err := enc.Marshal()
	if err != nil {
		return nil, err
	}
	return append(msg[4:], make([]byte, padding)...), nil
}

func compressExtensions(exts []HelloExtension, compress []uint16) ([]HelloExtension, error) {
	if len(compress) == 0 {
		return exts, nil
	}
	first, last := -1, -1
	for i, e := range exts {
		if !slices.Contains(compress, e.Type) {
			continue
		}
		if e.Type == ExtEncryptedHello || e.Type == ExtOuterExtensions {
			return nil, outerErr("cannot compress " + ExtensionName(e.Type))
		}
		if first >= 0 && last != i-1 {
			return nil, outerErr("compressed extensions are not contiguous in ClientHelloInner")
		}
		if first < 0 {
			first = i
		}
		last = i
	}
	if first < 0 || last-first+1 != len(compress) || len(compress) > 127 {
		return nil, outerErr("compress lists extensions absent from ClientHelloInner, or repeats one")
	}
	var b cryptobyte.Builder
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, e := range exts[first : last+1] {
			b.AddUint16(e.Type)
		}
	})
	out := append([]HelloExtension(nil), exts[:first]...)
	out = append(out, HelloExtension{Type: ExtOuterExtensions, Data: b.BytesOrPanic()})
	return append(out, exts[last+1:]...), nil
}

func outerErr(reason string) error {
	return &FieldError{Struct: "EncodedClientHelloInner", Field: "ech_outer_extensions", Reason: reason, Err: ErrOuterExtensions}
}

// DecodeClientHelloInner reverses EncodeClientHelloInner as a
// client-facing server does (RFC 9849 §5.1): it checks that the padding is
// all zeros, copies legacy_session_id from outer, expands
// ech_outer_extensions from outer's extensions, and checks that the result
// is a ClientHelloInner (encrypted_client_hello of type inner, TLS 1.3
// only). It returns the reconstructed ClientHelloInner, whose Raw is the
// full handshake message, and the padding length.
func DecodeClientHelloInner(encoded []byte, outer *ClientHello) (*ClientHello, int, error) {
	const st = "EncodedClientHelloInner"
	s := cryptobyte.String(encoded)
	var rec ClientHello
	var sid, suites, comp cryptobyte.String
	if !s.ReadUint16(&rec.Version) || !s.ReadBytes(&rec.Random, 32) || !s.ReadUint8LengthPrefixed(&sid) ||
		!s.ReadUint16LengthPrefixed(&suites) || len(suites)%2 != 0 || !s.ReadUint8LengthPrefixed(&comp) {
		return nil, 0, malformed(st, "client_hello")
	}
	if len(sid) != 0 {
		return nil, 0, invalid(st, "legacy_session_id", "must be empty")
	}
	exts, err := readExtensions(&s, st, len(encoded))
	if err != nil {
		return nil, 0, err
	}
	for _, z := range s {
		if z != 0 {
			return nil, 0, &FieldError{Struct: st, Field: "zeros", Reason: "padding is not all zeros", Err: ErrBadPadding}
		}
	}
	if rec.Extensions, err = expandExtensions(exts, outer.Extensions); err != nil {
		return nil, 0, err
	}
	rec.SessionID, rec.CompressionMethods = outer.SessionID, comp
	for ; !suites.Empty(); suites.Skip(2) {
		rec.CipherSuites = append(rec.CipherSuites, uint16(suites[0])<<8|uint16(suites[1]))
	}
	msg, err := rec.Marshal()
	if err != nil {
		return nil, 0, err
	}
	inner, err := ParseClientHello(msg)
	if err != nil {
		return nil, 0, err
	}
	return inner, len(s), checkInner(inner)
}

// expandExtensions replaces ech_outer_extensions by the outer extensions
// it references, in linear time (RFC 9849 Appendix A) and with one error
// per broken rule.
func expandExtensions(exts, outer []HelloExtension) ([]HelloExtension, error) {
	out := make([]HelloExtension, 0, len(exts))
	expanded := false
	for _, e := range exts {
		if e.Type != ExtOuterExtensions {
			out = append(out, HelloExtension{Type: e.Type, Data: e.Data})
			continue
		}
		if expanded {
			return nil, outerErr("more than one ech_outer_extensions")
		}
		expanded = true
		s := cryptobyte.String(e.Data)
		refs, ok := readU16List(&s, 1)
		if !ok {
			return nil, malformed("EncodedClientHelloInner", "ech_outer_extensions")
		}
		var err error
		if out, err = appendReferenced(out, refs, outer); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func appendReferenced(out []HelloExtension, refs []uint16, outer []HelloExtension) ([]HelloExtension, error) {
	pos := make(map[uint16]int, len(outer))
	for i, e := range outer {
		pos[e.Type] = i
	}
	seen := make(map[uint16]bool, len(refs))
	next := 0
	for _, t := range refs {
		i, ok := pos[t]
		switch {
		case t == ExtEncryptedHello:
			return nil, outerErr("references encrypted_client_hello")
		case seen[t]:
			return nil, outerErr("references " + ExtensionName(t) + " twice")
		case !ok:
			return nil, outerErr(ExtensionName(t) + " is not in ClientHelloOuter")
		case i < next:
			return nil, outerErr(ExtensionName(t) + " is out of order relative to ClientHelloOuter")
		}
		seen[t], next = true, i+1
		out = append(out, HelloExtension{Type: t, Data: outer[i].Data})
	}
	return out, nil
}

// checkInner applies RFC 9849 §7.1: ClientHelloInner has an
// encrypted_client_hello of type inner and offers TLS 1.3 and nothing
// older (GREASE values aside).
func checkInner(inner *ClientHello) error {
	if inner.ECH == nil || inner.ECH.Type != ECHInner {
		return &FieldError{Struct: "ClientHelloInner", Field: "encrypted_client_hello",
			Reason: "missing or not of type inner", Err: ErrInnerType}
	}
	tls13 := false
	for _, v := range inner.SupportedVersions {
		switch {
		case IsGREASE(v):
		case v < VersionTLS13:
			return invalid("ClientHelloInner", "supported_versions", fmt.Sprintf("offers %#04x, older than TLS 1.3", v))
		case v == VersionTLS13:
			tls13 = true
		}
	}
	if !tls13 {
		return invalid("ClientHelloInner", "supported_versions", "does not offer TLS 1.3")
	}
	return nil
}
