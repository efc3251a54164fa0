package ech

import (
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// ErrNeedMore reports input that is a valid prefix of a TLS record stream or
// handshake message but stops before the message ends: a TCP reassembler
// should wait for more bytes rather than give up.
var ErrNeedMore = errors.New("ech: need more data")

// ErrAlert reports a TLS alert record where a handshake record was expected.
var ErrAlert = errors.New("ech: peer sent an alert")

// TLS record content types and handshake message types used here.
const (
	recordChangeCipherSpec uint8 = 20
	recordAlert            uint8 = 21
	recordHandshake        uint8 = 22
	maxPlaintext                 = 1 << 14

	typeClientHello uint8 = 1
	typeServerHello uint8 = 2
	typeMessageHash uint8 = 254
)

// HandshakeFromRecords reassembles the first handshake message carried by a
// stream of TLS plaintext records, however it is fragmented. Leading
// change_cipher_spec records are skipped. It returns the message with its
// 4-byte header and the number of record bytes that held it (the records up
// to and including the one the message ends in). A prefix of a valid stream
// gives ErrNeedMore with need set to the smallest total length that could
// make progress; an alert record gives ErrAlert.
func HandshakeFromRecords(b []byte) (msg []byte, n int, err error) {
	var body []byte
	for off := 0; ; {
		if len(b)-off < 5 {
			return nil, off + 5, needMore("TLSRecord", "header")
		}
		typ, major := b[off], b[off+1]
		length := int(b[off+3])<<8 | int(b[off+4])
		if major != 3 {
			return nil, 0, malformed("TLSRecord", "legacy_record_version")
		}
		if length == 0 || length > maxPlaintext {
			return nil, 0, invalid("TLSRecord", "length", fmt.Sprintf("%d is outside 1..%d", length, maxPlaintext))
		}
		if len(b)-off-5 < length {
			return nil, off + 5 + length, needMore("TLSRecord", "fragment")
		}
		frag := b[off+5 : off+5+length]
		off += 5 + length
		switch {
		case typ == recordChangeCipherSpec && body == nil:
			continue
		case typ == recordAlert && length == 2:
			return nil, 0, &FieldError{Struct: "TLSRecord", Field: "content_type",
				Reason: fmt.Sprintf("alert level %d description %d", frag[0], frag[1]), Err: ErrAlert}
		case typ != recordHandshake:
			return nil, 0, invalid("TLSRecord", "content_type", fmt.Sprintf("%d is not handshake", typ))
		}
		body = append(body, frag...)
		if len(body) < 4 {
			continue
		}
		total := 4 + (int(body[1])<<16 | int(body[2])<<8 | int(body[3]))
		if len(body) >= total {
			return body[:total:total], off, nil
		}
	}
}

func needMore(strct, field string) error {
	return &FieldError{Struct: strct, Field: field, Reason: "input ends early", Err: ErrNeedMore}
}

// RecordsNeeded reports how many bytes of the TLS record stream b are
// needed to hold its first complete handshake message. With err nil, n is
// the length of the records that hold the message; with ErrNeedMore, n is a
// lower bound of the total length to wait for; any other error means the
// bytes are not a TLS handshake and waiting will not help.
func RecordsNeeded(b []byte) (n int, err error) {
	_, n, err = HandshakeFromRecords(b)
	return n, err
}

// ParseClientHelloRecords parses a ClientHello from TLS records (see
// HandshakeFromRecords). Trailing bytes after the record that ends the
// message are ignored.
func ParseClientHelloRecords(b []byte) (*ClientHello, error) {
	msg, _, err := HandshakeFromRecords(b)
	if err != nil {
		return nil, err
	}
	return ParseClientHello(msg)
}

// MarshalRecords wraps a handshake message in TLS plaintext handshake
// records of at most 2^14 bytes each, with legacy_record_version 0x0301 as
// clients use for the first ClientHello. RFC 8446 §5.1 wants 0x0303 for
// every later record (the second ClientHello included): see
// MarshalRecordsVersion.
func MarshalRecords(msg []byte) []byte { return MarshalRecordsVersion(msg, 0x0301) }

// MarshalRecordsVersion is MarshalRecords with a given
// legacy_record_version.
func MarshalRecordsVersion(msg []byte, legacyVersion uint16) []byte {
	out := make([]byte, 0, len(msg)+5*(len(msg)/maxPlaintext+1))
	for len(msg) > 0 {
		n := min(len(msg), maxPlaintext)
		out = append(out, recordHandshake, byte(legacyVersion>>8), byte(legacyVersion), byte(n>>8), byte(n))
		out = append(out, msg[:n]...)
		msg = msg[n:]
	}
	return out
}

// handshakeBody checks the 4-byte handshake header of msg and returns the
// body. A short message gives ErrNeedMore; trailing bytes are malformed.
func handshakeBody(msg []byte, want uint8, strct string) (cryptobyte.String, error) {
	if len(msg) < 4 {
		return nil, needMore(strct, "handshake_header")
	}
	if msg[0] != want {
		return nil, invalid(strct, "msg_type", fmt.Sprintf("handshake type %d, want %d", msg[0], want))
	}
	n := int(msg[1])<<16 | int(msg[2])<<8 | int(msg[3])
	if len(msg)-4 < n {
		return nil, needMore(strct, "handshake_length")
	}
	if len(msg)-4 > n {
		return nil, invalid(strct, "handshake_length", "trailing bytes after the message")
	}
	return cryptobyte.String(msg[4:]), nil
}

// readExtensions reads an extensions block, rejecting duplicates as RFC
// 8446 §4.2 requires. Data slices alias s.
// msgLen is the length of the whole message s is a suffix of, so that each
// extension's Offset can be recorded.
func readExtensions(s *cryptobyte.String, strct string, msgLen int) ([]HelloExtension, error) {
	var exts cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&exts) {
		return nil, malformed(strct, "extensions")
	}
	var out []HelloExtension
	var seen [1 << 16 / 64]uint64 // a bit per extension type, on the stack
	for !exts.Empty() {
		e := HelloExtension{Offset: msgLen - len(*s) - len(exts) + 4}
		var data cryptobyte.String
		if !exts.ReadUint16(&e.Type) || !exts.ReadUint16LengthPrefixed(&data) {
			return nil, malformed(strct, "extensions")
		}
		word, bit := e.Type/64, uint64(1)<<(e.Type%64)
		if seen[word]&bit != 0 {
			return nil, invalid(strct, "extensions", "duplicate extension "+ExtensionName(e.Type))
		}
		seen[word] |= bit
		e.Data = data
		out = append(out, e)
	}
	return out, nil
}

// ClientHello is a dissected TLS ClientHello. Raw and the extension bodies
// are kept byte for byte; the fields after Extensions are views parsed from
// the extensions the lab shows, zero when the extension is absent. GREASE
// values are kept wherever they appear.
type ClientHello struct {
	Raw                []byte // the handshake message, 4-byte header included
	Version            uint16 // legacy_version
	Random             []byte // 32 bytes
	SessionID          []byte // legacy_session_id
	CipherSuites       []uint16
	CompressionMethods []byte
	Extensions         []HelloExtension // in wire order

	ServerName          string   // first host_name of server_name
	ALPN                []string // application_layer_protocol_negotiation
	SupportedVersions   []uint16
	SupportedGroups     []uint16
	KeyShares           []KeyShare
	SignatureAlgorithms []uint16
	PSKModes            []uint8
	PreSharedKey        *PreSharedKey
	PaddingLen          int             // length of the padding extension body
	ECH                 *ECHClientHello // encrypted_client_hello
	OuterExtensions     []uint16        // ech_outer_extensions (only legal in EncodedClientHelloInner)
}

// ParseClientHello parses a ClientHello handshake message (with its 4-byte
// header). The result keeps a copy of msg in Raw; its slices point into it.
// A message shorter than its header says gives ErrNeedMore; anything else
// that does not parse gives a FieldError wrapping ErrMalformed or
// ErrInvalid.
func ParseClientHello(msg []byte) (*ClientHello, error) {
	raw := append([]byte(nil), msg...)
	s, err := handshakeBody(raw, typeClientHello, "ClientHello")
	if err != nil {
		return nil, err
	}
	ch := &ClientHello{Raw: raw}
	if err := ch.parseBody(s); err != nil {
		return nil, err
	}
	for _, e := range ch.Extensions {
		if err := ch.parseExtension(e); err != nil {
			return nil, err
		}
	}
	return ch, nil
}

func (ch *ClientHello) parseBody(s cryptobyte.String) error {
	const st = "ClientHello"
	var sid, suites, comp cryptobyte.String
	if !s.ReadUint16(&ch.Version) {
		return malformed(st, "legacy_version")
	}
	if !s.ReadBytes(&ch.Random, 32) {
		return malformed(st, "random")
	}
	if !s.ReadUint8LengthPrefixed(&sid) || len(sid) > 32 {
		return malformed(st, "legacy_session_id")
	}
	ch.SessionID = sid
	if !s.ReadUint16LengthPrefixed(&suites) || len(suites) < 2 || len(suites)%2 != 0 {
		return malformed(st, "cipher_suites")
	}
	for !suites.Empty() {
		var v uint16
		suites.ReadUint16(&v)
		ch.CipherSuites = append(ch.CipherSuites, v)
	}
	if !s.ReadUint8LengthPrefixed(&comp) || len(comp) < 1 {
		return malformed(st, "legacy_compression_methods")
	}
	ch.CompressionMethods = comp
	if s.Empty() { // extensions are optional before TLS 1.3
		return nil
	}
	exts, err := readExtensions(&s, st, len(ch.Raw))
	if err != nil {
		return err
	}
	if !s.Empty() {
		return invalid(st, "extensions", "trailing bytes after extensions")
	}
	ch.Extensions = exts
	return nil
}

// Extension returns the extension of the given type and whether it is
// present.
func (ch *ClientHello) Extension(typ uint16) (HelloExtension, bool) {
	return findExtension(ch.Extensions, typ)
}

func findExtension(exts []HelloExtension, typ uint16) (HelloExtension, bool) {
	for _, e := range exts {
		if e.Type == typ {
			return e, true
		}
	}
	return HelloExtension{}, false
}

// ExtensionTypes returns the extension types in wire order.
func (ch *ClientHello) ExtensionTypes() []uint16 {
	out := make([]uint16, len(ch.Extensions))
	for i, e := range ch.Extensions {
		out[i] = e.Type
	}
	return out
}

// Marshal encodes the legacy fields and Extensions (in order) as a
// ClientHello handshake message. The parsed views (ServerName, ECH, …) are
// not consulted: edit Extensions to change the message.
func (ch *ClientHello) Marshal() ([]byte, error) {
	if len(ch.Random) != 32 {
		return nil, invalid("ClientHello", "random", fmt.Sprintf("%d bytes, want 32", len(ch.Random)))
	}
	// Sized once: a cryptobyte.Builder grows by appending, and a
	// ClientHello's nested length prefixes would copy it again and again.
	size := 4 + 2 + 32 + 1 + len(ch.SessionID) + 2 + 2*len(ch.CipherSuites) + 1 + len(ch.CompressionMethods) + 2
	for _, e := range ch.Extensions {
		size += 4 + len(e.Data)
	}
	b := cryptobyte.NewBuilder(make([]byte, 0, size))
	b.AddUint8(typeClientHello)
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) {
		b.AddUint16(ch.Version)
		b.AddBytes(ch.Random)
		addU8Bytes(b, ch.SessionID)
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			for _, c := range ch.CipherSuites {
				b.AddUint16(c)
			}
		})
		addU8Bytes(b, ch.CompressionMethods)
		addExtensions(b, ch.Extensions)
	})
	out, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("ech: marshal ClientHello: %w", err)
	}
	return out, nil
}

func addU8Bytes(b *cryptobyte.Builder, v []byte) {
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(v) })
}

func addU16Bytes(b *cryptobyte.Builder, v []byte) {
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(v) })
}

func addExtensions(b *cryptobyte.Builder, exts []HelloExtension) {
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, e := range exts {
			b.AddUint16(e.Type)
			addU16Bytes(b, e.Data)
		}
	})
}

// SetExtension replaces the body of the extension of type typ in place, or
// appends it (before a trailing pre_shared_key, which must stay last).
func (ch *ClientHello) SetExtension(typ uint16, data []byte) {
	ch.Extensions = setExtension(ch.Extensions, typ, data)
}

func setExtension(exts []HelloExtension, typ uint16, data []byte) []HelloExtension {
	for i := range exts {
		if exts[i].Type == typ {
			exts[i].Data = data
			return exts
		}
	}
	e := HelloExtension{Type: typ, Data: data}
	if n := len(exts); n > 0 && exts[n-1].Type == ExtPreSharedKey {
		return append(exts[:n-1:n-1], e, exts[n-1])
	}
	return append(exts, e)
}

// RemoveExtension drops the extension of type typ, if present.
func (ch *ClientHello) RemoveExtension(typ uint16) {
	out := ch.Extensions[:0:0]
	for _, e := range ch.Extensions {
		if e.Type != typ {
			out = append(out, e)
		}
	}
	ch.Extensions = out
}
