package ech

import (
	"crypto/ecdh"
	"crypto/rand"
	"fmt"
	"io"

	"golang.org/x/crypto/cryptobyte"
)

// ESNIHelloOptions configures BuildESNIClientHello. Only ServerName is
// required.
type ESNIHelloOptions struct {
	ServerName string   // the true name, encrypted
	ALPN       []string // sent in the clear, as ESNI never hid it
	// PublicNameSNI puts ESNIKeys.public_name in a cleartext server_name,
	// as draft-03 §5.1.1 requires. Off by default: draft-02 (the deployed
	// version) had no public name and clients sent no cleartext SNI.
	PublicNameSNI bool
	Group         uint16    // ESNI key share group; 0 = first usable
	Suite         uint16    // ESNI cipher suite; 0 = first usable
	Rand          io.Reader // default crypto/rand
}

// ESNIHello is a built ClientHello and the client's secrets.
type ESNIHello struct {
	Records  []byte           // TLS records, ready to write to a socket
	Message  []byte           // the handshake message
	Hello    *ClientHello     // Message parsed back
	Sealed   *ESNISealed      // the ESNI extension, nonce and ephemeral key
	KeyShare *ecdh.PrivateKey // the TLS X25519 key share (not the ESNI one)
}

// Signature algorithms the built ClientHello offers (RFC 8446 §4.2.3).
var esniSigAlgs = []uint16{0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601, 0x0807}

// BuildESNIClientHello builds a TLS 1.3 ClientHello that carries an
// encrypted_server_name extension for keys and no cleartext server_name
// (unless PublicNameSNI), with a real X25519 key share. The keys should
// have passed Validate. It offers TLS 1.3 only, the three TLS 1.3 suites,
// psk_dhe_ke and a 32-byte legacy_session_id (middlebox compatibility).
func BuildESNIClientHello(keys *ESNIKeys, o ESNIHelloOptions) (*ESNIHello, error) {
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	tlsKey, err := generateECDH(GroupX25519, o.Rand)
	if err != nil {
		return nil, err
	}
	ch := &ClientHello{Version: VersionTLS12, Random: make([]byte, 32), SessionID: make([]byte, 32),
		CipherSuites:       []uint16{TLSAES128GCMSHA256, TLSAES256GCMSHA384, TLSChaCha20Poly1305SHA256},
		CompressionMethods: []byte{0}}
	if _, err := io.ReadFull(o.Rand, ch.Random); err != nil {
		return nil, fmt.Errorf("ech: reading randomness: %w", err)
	}
	if _, err := io.ReadFull(o.Rand, ch.SessionID); err != nil {
		return nil, fmt.Errorf("ech: reading randomness: %w", err)
	}
	var b cryptobyte.Builder
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		addKeyShares(b, []KeyShare{{Group: GroupX25519, Data: tlsKey.PublicKey().Bytes()}})
	})
	keyShareExt := b.BytesOrPanic()
	sealed, err := SealESNI(keys, o.ServerName, ch.Random, keyShareExt,
		&ESNISealOptions{Group: o.Group, Suite: o.Suite, Rand: o.Rand})
	if err != nil {
		return nil, err
	}
	if o.PublicNameSNI {
		if keys.PublicName == "" {
			return nil, invalid("ESNIKeys", "public_name", "absent (version 0xff01): nothing to send as server_name")
		}
		sni, err := MarshalServerNameList(keys.PublicName)
		if err != nil {
			return nil, err
		}
		ch.SetExtension(ExtServerName, sni)
	}
	ch.SetExtension(ExtSupportedVersions, []byte{2, 0x03, 0x04})
	ch.SetExtension(ExtSupportedGroups, esniU16List(2, GroupX25519, GroupP256, GroupP384))
	ch.SetExtension(ExtSignatureAlgorithms, esniU16List(2, esniSigAlgs...))
	ch.SetExtension(ExtKeyShare, keyShareExt)
	ch.SetExtension(ExtPSKModes, []byte{1, 1}) // psk_dhe_ke
	if len(o.ALPN) > 0 {
		alpn, err := marshalALPN(o.ALPN)
		if err != nil {
			return nil, err
		}
		ch.SetExtension(ExtALPN, alpn)
	}
	ch.SetExtension(ExtEncryptedServerName, sealed.ExtData)
	msg, err := ch.Marshal()
	if err != nil {
		return nil, err
	}
	parsed, err := ParseClientHello(msg)
	if err != nil {
		return nil, err
	}
	return &ESNIHello{Records: MarshalRecords(msg), Message: msg, Hello: parsed, Sealed: sealed, KeyShare: tlsKey}, nil
}

// esniU16List encodes values as a list of uint16 with a lenBytes length prefix.
func esniU16List(lenBytes int, v ...uint16) []byte {
	out := make([]byte, 0, lenBytes+2*len(v))
	n := 2 * len(v)
	if lenBytes == 2 {
		out = append(out, byte(n>>8))
	}
	out = append(out, byte(n))
	for _, x := range v {
		out = append(out, byte(x>>8), byte(x))
	}
	return out
}

func marshalALPN(protos []string) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, p := range protos {
			if len(p) == 0 || len(p) > 255 {
				b.SetError(invalid("ClientHello", "application_layer_protocol_negotiation", fmt.Sprintf("protocol name %q: length must be 1..255", p)))
				return
			}
			b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(p)) })
		}
	})
	return b.Bytes()
}

// ESNIView is what a passive observer can read from an ESNI ClientHello:
// everything but the name.
type ESNIView struct {
	Suite           uint16 // TLS 1.3 cipher suite of the ESNI encryption
	KeyShareGroup   uint16 // group of the client's ESNI key share
	KeyShareLen     int
	RecordDigest    []byte // identifies the ESNIKeys used (see MatchESNIKeys)
	EncryptedLen    int    // length of encrypted_sni: 16 + padded_length + 16
	PaddedLength    int    // EncryptedLen minus nonce and AEAD tag, -1 if shorter
	CleartextSNI    string // a server_name sent alongside (draft-03's public_name), "" if none
	ExtensionOffset int    // position of the extension body in ClientHello.Raw
	Ext             *ClientEncryptedSNI
	Err             error // set when the extension is present but does not parse
}

// ObserveESNI decodes the encrypted_server_name extension of ch, if
// present, as a passive observer sees it. ok is false when ch carries no
// such extension; a malformed one gives ok true with Err set.
func ObserveESNI(ch *ClientHello) (view *ESNIView, ok bool) {
	e, ok := ch.Extension(ExtEncryptedServerName)
	if !ok {
		return nil, false
	}
	v := &ESNIView{CleartextSNI: ch.ServerName, ExtensionOffset: e.Offset, PaddedLength: -1}
	ext, err := ParseClientEncryptedSNI(e.Data)
	if err != nil {
		v.Err = err
		return v, true
	}
	v.Ext, v.Suite, v.KeyShareGroup = ext, ext.Suite, ext.KeyShare.Group
	v.KeyShareLen, v.RecordDigest, v.EncryptedLen = len(ext.KeyShare.Data), ext.RecordDigest, len(ext.EncryptedSNI)
	if n := v.EncryptedLen - ESNINonceLen - 16; n >= 0 {
		v.PaddedLength = n
	}
	return v, true
}

// MatchESNIKeys returns the first of keys whose record digest under the
// view's suite equals the view's record_digest: which published ESNIKeys
// the client used. An observer with the public DNS data can do this.
func MatchESNIKeys(v *ESNIView, keys []*ESNIKeys) (*ESNIKeys, bool) {
	if v == nil || v.Ext == nil {
		return nil, false
	}
	for _, k := range keys {
		if d, err := k.RecordDigest(v.Suite); err == nil && ctEqual(d, v.RecordDigest) {
			return k, true
		}
	}
	return nil, false
}
