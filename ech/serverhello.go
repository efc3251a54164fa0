package ech

import (
	"bytes"

	"golang.org/x/crypto/cryptobyte"
)

// helloRetryRequestRandom is the special ServerHello.random that marks a
// HelloRetryRequest (RFC 8446 §4.1.3). It is an array, not a slice, so
// no caller can change it; IsHelloRetryRequestRandom compares against it.
var helloRetryRequestRandom = [32]byte{
	0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
	0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
}

// IsHelloRetryRequestRandom reports whether random is the special
// ServerHello.random that marks a HelloRetryRequest (RFC 8446 §4.1.3).
func IsHelloRetryRequestRandom(random []byte) bool {
	return bytes.Equal(random, helloRetryRequestRandom[:])
}

// ServerHello is a dissected ServerHello or HelloRetryRequest: what a
// client or observer needs to follow an ECH handshake.
type ServerHello struct {
	Raw               []byte // the handshake message, 4-byte header included
	Version           uint16 // legacy_version
	Random            []byte // 32 bytes
	SessionID         []byte // legacy_session_id_echo
	CipherSuite       uint16
	CompressionMethod uint8
	Extensions        []HelloExtension // in wire order

	IsHRR             bool   // IsHelloRetryRequestRandom(Random)
	SupportedVersion  uint16 // selected_version of supported_versions, 0 if absent
	KeyShareGroup     uint16 // the server's share group, or the HRR's selected_group
	KeyShare          []byte // the server's key_exchange (not in an HRR)
	Cookie            []byte // HRR cookie
	SelectedIdentity  int    // pre_shared_key selected_identity, -1 if absent
	ECHConfirmation   []byte // HRR encrypted_client_hello: the 8-byte confirmation
	ConfirmationStart int    // position in Raw of the 8 confirmation bytes (random or HRR extension)
}

// ParseServerHello parses a ServerHello or HelloRetryRequest handshake
// message (with its 4-byte header). Errors are as for ParseClientHello.
func ParseServerHello(msg []byte) (*ServerHello, error) {
	const st = "ServerHello"
	raw := append([]byte(nil), msg...)
	s, err := handshakeBody(raw, typeServerHello, st)
	if err != nil {
		return nil, err
	}
	sh := &ServerHello{Raw: raw, SelectedIdentity: -1}
	var sid cryptobyte.String
	switch {
	case !s.ReadUint16(&sh.Version):
		return nil, malformed(st, "legacy_version")
	case !s.ReadBytes(&sh.Random, 32):
		return nil, malformed(st, "random")
	case !s.ReadUint8LengthPrefixed(&sid) || len(sid) > 32:
		return nil, malformed(st, "legacy_session_id_echo")
	case !s.ReadUint16(&sh.CipherSuite):
		return nil, malformed(st, "cipher_suite")
	case !s.ReadUint8(&sh.CompressionMethod):
		return nil, malformed(st, "legacy_compression_method")
	}
	sh.SessionID = sid
	sh.IsHRR = IsHelloRetryRequestRandom(sh.Random)
	sh.ConfirmationStart = 4 + 2 + 24
	if s.Empty() {
		return sh, nil
	}
	if sh.Extensions, err = readExtensions(&s, st, len(raw)); err != nil {
		return nil, err
	}
	if !s.Empty() {
		return nil, invalid(st, "extensions", "trailing bytes after extensions")
	}
	for _, e := range sh.Extensions {
		if !sh.parseExtension(e) {
			return nil, malformed(st, ExtensionName(e.Type))
		}
	}
	return sh, nil
}

func (sh *ServerHello) parseExtension(e HelloExtension) bool {
	s := cryptobyte.String(e.Data)
	switch e.Type {
	case ExtSupportedVersions:
		return s.ReadUint16(&sh.SupportedVersion) && s.Empty()
	case ExtKeyShare:
		if !s.ReadUint16(&sh.KeyShareGroup) {
			return false
		}
		if sh.IsHRR {
			return s.Empty()
		}
		var ks cryptobyte.String
		if !s.ReadUint16LengthPrefixed(&ks) || len(ks) == 0 || !s.Empty() {
			return false
		}
		sh.KeyShare = ks
	case ExtCookie:
		var c cryptobyte.String
		if !s.ReadUint16LengthPrefixed(&c) || len(c) == 0 || !s.Empty() {
			return false
		}
		sh.Cookie = c
	case ExtPreSharedKey:
		var id uint16
		if !s.ReadUint16(&id) || !s.Empty() {
			return false
		}
		sh.SelectedIdentity = int(id)
	case ExtEncryptedHello:
		// Only an HRR may carry it (§5); its body is the 8-byte confirmation.
		if !sh.IsHRR || len(s) != 8 {
			return false
		}
		sh.ECHConfirmation, sh.ConfirmationStart = e.Data, e.Offset
	}
	return true
}

// Extension returns the extension of the given type and whether it is
// present.
func (sh *ServerHello) Extension(typ uint16) (HelloExtension, bool) {
	return findExtension(sh.Extensions, typ)
}

// ParseServerHelloRecords parses the first handshake message of a TLS
// record stream (see HandshakeFromRecords) as a ServerHello.
func ParseServerHelloRecords(b []byte) (*ServerHello, error) {
	msg, _, err := HandshakeFromRecords(b)
	if err != nil {
		return nil, err
	}
	return ParseServerHello(msg)
}

// Confirmation returns the 8 bytes that carry the ECH acceptance signal:
// the last 8 bytes of Random for a ServerHello, the encrypted_client_hello
// extension for an HRR (nil if the HRR has none).
func (sh *ServerHello) Confirmation() []byte {
	if sh.IsHRR {
		return sh.ECHConfirmation
	}
	return sh.Random[24:]
}
