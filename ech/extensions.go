package ech

import (
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// TLS extension code points that the dissector parses or that ECH uses
// (IANA "TLS ExtensionType Values").
const (
	ExtServerName          uint16 = 0      // server_name (RFC 6066)
	ExtStatusRequest       uint16 = 5      // status_request
	ExtSupportedGroups     uint16 = 10     // supported_groups
	ExtECPointFormats      uint16 = 11     // ec_point_formats
	ExtSignatureAlgorithms uint16 = 13     // signature_algorithms
	ExtALPN                uint16 = 16     // application_layer_protocol_negotiation
	ExtSCT                 uint16 = 18     // signed_certificate_timestamp
	ExtPadding             uint16 = 21     // padding (RFC 7685)
	ExtExtendedMasterSec   uint16 = 23     // extended_master_secret
	ExtCompressCert        uint16 = 27     // compress_certificate
	ExtSessionTicket       uint16 = 35     // session_ticket
	ExtPreSharedKey        uint16 = 41     // pre_shared_key
	ExtEarlyData           uint16 = 42     // early_data
	ExtSupportedVersions   uint16 = 43     // supported_versions
	ExtCookie              uint16 = 44     // cookie
	ExtPSKModes            uint16 = 45     // psk_key_exchange_modes
	ExtSigAlgsCert         uint16 = 50     // signature_algorithms_cert
	ExtKeyShare            uint16 = 51     // key_share
	ExtQUICParams          uint16 = 57     // quic_transport_parameters
	ExtALPS                uint16 = 17513  // application_settings (old code point)
	ExtOuterExtensions     uint16 = 0xfd00 // ech_outer_extensions (RFC 9849 §5.1)
	ExtEncryptedHello      uint16 = 0xfe0d // encrypted_client_hello (RFC 9849 §5)
	ExtRenegotiationInfo   uint16 = 0xff01 // renegotiation_info
)

var extNames = map[uint16]string{
	ExtServerName: "server_name", ExtStatusRequest: "status_request",
	ExtSupportedGroups: "supported_groups", ExtECPointFormats: "ec_point_formats",
	ExtSignatureAlgorithms: "signature_algorithms", ExtALPN: "application_layer_protocol_negotiation",
	ExtSCT: "signed_certificate_timestamp", ExtPadding: "padding",
	ExtExtendedMasterSec: "extended_master_secret", ExtCompressCert: "compress_certificate",
	ExtSessionTicket: "session_ticket", ExtPreSharedKey: "pre_shared_key",
	ExtEarlyData: "early_data", ExtSupportedVersions: "supported_versions",
	ExtCookie: "cookie", ExtPSKModes: "psk_key_exchange_modes",
	ExtSigAlgsCert: "signature_algorithms_cert", ExtKeyShare: "key_share",
	ExtQUICParams: "quic_transport_parameters", ExtALPS: "application_settings",
	ExtOuterExtensions: "ech_outer_extensions", ExtEncryptedHello: "encrypted_client_hello",
	ExtRenegotiationInfo: "renegotiation_info",
}

// ExtensionName returns the IANA name of a TLS extension type, "GREASE" for
// the RFC 8701 reserved values, or the number in hex.
func ExtensionName(t uint16) string {
	if n, ok := extNames[t]; ok {
		return n
	}
	if IsGREASE(t) {
		return "GREASE"
	}
	return fmt.Sprintf("unknown(%#04x)", t)
}

// IsGREASE reports whether v is one of the RFC 8701 GREASE values 0x?a?a
// with both bytes equal (0x0a0a, 0x1a1a, … 0xfafa). They appear as cipher
// suites, extension types, groups, versions and signature algorithms.
func IsGREASE(v uint16) bool {
	return v&0x0f0f == 0x0a0a && v>>8 == v&0xff
}

// HelloExtension is one extension of a ClientHello or ServerHello, in wire
// order. Data is the extension body (without type and length).
type HelloExtension struct {
	Type   uint16
	Data   []byte
	Offset int // position of Data in the parsed message's Raw; 0 if built by hand
}

// Name returns the extension's IANA name (see ExtensionName).
func (e HelloExtension) Name() string { return ExtensionName(e.Type) }

// TLS 1.3 cipher suites and their transcript hash.
const (
	TLSAES128GCMSHA256        uint16 = 0x1301
	TLSAES256GCMSHA384        uint16 = 0x1302
	TLSChaCha20Poly1305SHA256 uint16 = 0x1303
)

// TLS versions as they appear in supported_versions.
const (
	VersionTLS12 uint16 = 0x0303
	VersionTLS13 uint16 = 0x0304
)

// ECHClientHelloType is the type byte of the encrypted_client_hello
// extension in a ClientHello.
type ECHClientHelloType uint8

// The two ECHClientHello variants.
const (
	ECHOuter ECHClientHelloType = 0
	ECHInner ECHClientHelloType = 1
)

// ECHClientHello is a parsed encrypted_client_hello extension of a
// ClientHello (RFC 9849 §5). For the inner variant only Type is set.
type ECHClientHello struct {
	Type          ECHClientHelloType
	CipherSuite   CipherSuite
	ConfigID      uint8
	Enc           []byte
	Payload       []byte
	PayloadOffset int // position of Payload in ClientHello.Raw
}

// KeyShare is one KeyShareEntry of a ClientHello key_share extension.
type KeyShare struct {
	Group uint16
	Data  []byte
}

// PSKIdentity is one identity of a pre_shared_key extension.
type PSKIdentity struct {
	Identity            []byte
	ObfuscatedTicketAge uint32
}

// PreSharedKey is a ClientHello pre_shared_key extension (OfferedPsks).
type PreSharedKey struct {
	Identities []PSKIdentity
	Binders    [][]byte
}

func (ch *ClientHello) parseExtension(e HelloExtension) error {
	s := cryptobyte.String(e.Data)
	ok := true
	switch e.Type {
	case ExtServerName:
		ch.ServerName, ok = parseServerName(s)
	case ExtALPN:
		ch.ALPN, ok = parseALPN(s)
	case ExtSupportedVersions:
		ch.SupportedVersions, ok = readU16List(&s, 1)
	case ExtSupportedGroups:
		ch.SupportedGroups, ok = readU16List(&s, 2)
	case ExtSignatureAlgorithms:
		ch.SignatureAlgorithms, ok = readU16List(&s, 2)
	case ExtKeyShare:
		ch.KeyShares, ok = parseKeyShares(s)
	case ExtPSKModes:
		var m cryptobyte.String
		ok = s.ReadUint8LengthPrefixed(&m) && len(m) > 0 && s.Empty()
		ch.PSKModes = m
	case ExtPreSharedKey:
		ch.PreSharedKey, ok = parsePSK(s)
	case ExtPadding:
		ch.PaddingLen = len(s)
	case ExtEncryptedHello:
		ch.ECH, ok = parseECHClientHello(s, e.Offset)
	case ExtOuterExtensions:
		ch.OuterExtensions, ok = readU16List(&s, 1)
		ok = ok && len(ch.OuterExtensions) > 0
	default:
		return nil
	}
	if !ok {
		return malformed("ClientHello", ExtensionName(e.Type))
	}
	return nil
}

// readU16List reads a list of uint16 with a length prefix of lenBytes (1
// or 2) and requires it to fill s.
func readU16List(s *cryptobyte.String, lenBytes int) ([]uint16, bool) {
	var l cryptobyte.String
	ok := lenBytes == 1 && s.ReadUint8LengthPrefixed(&l) || lenBytes == 2 && s.ReadUint16LengthPrefixed(&l)
	if !ok || len(l) == 0 || len(l)%2 != 0 || !s.Empty() {
		return nil, false
	}
	out := make([]uint16, 0, len(l)/2)
	for !l.Empty() {
		var v uint16
		l.ReadUint16(&v)
		out = append(out, v)
	}
	return out, true
}

func parseServerName(s cryptobyte.String) (string, bool) {
	var list cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&list) || !s.Empty() || list.Empty() {
		return "", false
	}
	name := ""
	for !list.Empty() {
		var typ uint8
		var host cryptobyte.String
		if !list.ReadUint8(&typ) || !list.ReadUint16LengthPrefixed(&host) || len(host) == 0 {
			return "", false
		}
		if typ == 0 && name == "" {
			name = string(host)
		}
	}
	return name, true
}

func parseALPN(s cryptobyte.String) ([]string, bool) {
	var list cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&list) || !s.Empty() || list.Empty() {
		return nil, false
	}
	var out []string
	for !list.Empty() {
		var p cryptobyte.String
		if !list.ReadUint8LengthPrefixed(&p) || len(p) == 0 {
			return nil, false
		}
		out = append(out, string(p))
	}
	return out, true
}

func parseKeyShares(s cryptobyte.String) ([]KeyShare, bool) {
	var list cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&list) || !s.Empty() {
		return nil, false
	}
	out := []KeyShare{}
	for !list.Empty() {
		var ks KeyShare
		var data cryptobyte.String
		if !list.ReadUint16(&ks.Group) || !list.ReadUint16LengthPrefixed(&data) || len(data) == 0 {
			return nil, false
		}
		ks.Data = data
		out = append(out, ks)
	}
	return out, true
}

func parsePSK(s cryptobyte.String) (*PreSharedKey, bool) {
	var ids, binders cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&ids) || !s.ReadUint16LengthPrefixed(&binders) || !s.Empty() ||
		ids.Empty() || binders.Empty() {
		return nil, false
	}
	p := &PreSharedKey{}
	for !ids.Empty() {
		var id PSKIdentity
		var idb cryptobyte.String
		if !ids.ReadUint16LengthPrefixed(&idb) || len(idb) == 0 || !ids.ReadUint32(&id.ObfuscatedTicketAge) {
			return nil, false
		}
		id.Identity = idb
		p.Identities = append(p.Identities, id)
	}
	for !binders.Empty() {
		var b cryptobyte.String
		if !binders.ReadUint8LengthPrefixed(&b) || len(b) < 32 {
			return nil, false
		}
		p.Binders = append(p.Binders, b)
	}
	return p, len(p.Binders) == len(p.Identities)
}

// parseECHClientHello parses an encrypted_client_hello body found at
// offset off of the message.
func parseECHClientHello(s cryptobyte.String, off int) (*ECHClientHello, bool) {
	total := len(s)
	var typ uint8
	if !s.ReadUint8(&typ) {
		return nil, false
	}
	e := &ECHClientHello{Type: ECHClientHelloType(typ)}
	switch e.Type {
	case ECHInner:
		return e, s.Empty()
	case ECHOuter:
	default:
		return nil, false
	}
	var enc, payload cryptobyte.String
	if !s.ReadUint16(&e.CipherSuite.KDF) || !s.ReadUint16(&e.CipherSuite.AEAD) ||
		!s.ReadUint8(&e.ConfigID) || !s.ReadUint16LengthPrefixed(&enc) {
		return nil, false
	}
	e.PayloadOffset = off + total - len(s) + 2
	if !s.ReadUint16LengthPrefixed(&payload) || len(payload) == 0 || !s.Empty() {
		return nil, false
	}
	e.Enc, e.Payload = enc, payload
	return e, true
}
