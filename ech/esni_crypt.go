package ech

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"hash"
	"io"
	"slices"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/cryptobyte"
)

// ESNINonceLen is the length of ClientESNIInner.nonce.
const ESNINonceLen = 16

// ClientEncryptedSNI is the body of a ClientHello's encrypted_server_name
// extension (draft-03 §5).
type ClientEncryptedSNI struct {
	Suite        uint16   // TLS 1.3 cipher suite of the encryption
	KeyShare     KeyShare // the client's ESNI ephemeral share
	RecordDigest []byte   // Hash(ESNIKeys from checksum to the end)
	EncryptedSNI []byte   // AEAD(ClientESNIInner)
}

// ParseClientEncryptedSNI parses an encrypted_server_name extension body
// sent by a client.
func ParseClientEncryptedSNI(extData []byte) (*ClientEncryptedSNI, error) {
	const st = "ClientEncryptedSNI"
	s := cryptobyte.String(extData)
	c := &ClientEncryptedSNI{}
	var ks, digest, enc cryptobyte.String
	if !s.ReadUint16(&c.Suite) {
		return nil, malformed(st, "suite")
	}
	if !s.ReadUint16(&c.KeyShare.Group) || !s.ReadUint16LengthPrefixed(&ks) || len(ks) == 0 {
		return nil, malformed(st, "key_share")
	}
	if !s.ReadUint16LengthPrefixed(&digest) {
		return nil, malformed(st, "record_digest")
	}
	if !s.ReadUint16LengthPrefixed(&enc) {
		return nil, malformed(st, "encrypted_sni")
	}
	if !s.Empty() {
		return nil, invalid(st, "encrypted_sni", "trailing bytes after the structure")
	}
	c.KeyShare.Data = append([]byte(nil), ks...)
	c.RecordDigest = append([]byte(nil), digest...)
	c.EncryptedSNI = append([]byte(nil), enc...)
	return c, nil
}

// Marshal encodes the extension body.
func (c *ClientEncryptedSNI) Marshal() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint16(c.Suite)
	addKeyShares(&b, []KeyShare{c.KeyShare})
	addU16Bytes(&b, c.RecordDigest)
	addU16Bytes(&b, c.EncryptedSNI)
	out, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("ech: marshal ClientEncryptedSNI: %w", err)
	}
	return out, nil
}

// esniAEAD returns the AEAD constructor, key length and hash of a TLS 1.3
// cipher suite.
type esniSuite struct {
	hash   func() hash.Hash
	keyLen int
	aead   func(key []byte) (cipher.AEAD, error)
}

func esniAEAD(suite uint16) (esniSuite, error) {
	h, err := suiteHash(suite)
	gcm := func(key []byte) (cipher.AEAD, error) {
		b, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		return cipher.NewGCM(b)
	}
	switch {
	case err != nil:
	case suite == TLSAES128GCMSHA256:
		return esniSuite{h, 16, gcm}, nil
	case suite == TLSAES256GCMSHA384:
		return esniSuite{h, 32, gcm}, nil
	case suite == TLSChaCha20Poly1305SHA256:
		return esniSuite{h, 32, chacha20poly1305.New}, nil
	}
	return esniSuite{}, unsupported("ClientEncryptedSNI", "suite",
		fmt.Sprintf("%#04x (supported: 0x1301, 0x1302, 0x1303)", suite))
}

// RecordDigest returns Hash(ESNIKeys from the checksum to the end), with
// the hash of the TLS 1.3 cipher suite (draft-03 §5).
func (k *ESNIKeys) RecordDigest(suite uint16) ([]byte, error) {
	cs, err := esniAEAD(suite)
	if err != nil {
		return nil, err
	}
	if len(k.Raw) < 2 {
		return nil, invalid("ESNIKeys", "checksum", "structure not marshalled")
	}
	h := cs.hash()
	h.Write(k.Raw[2:])
	return h.Sum(nil), nil
}

// esniKeyIV runs the key schedule of draft-03 §5.1.1:
//
//	Zx  = HKDF-Extract(0, Z)
//	key = HKDF-Expand-Label(Zx, "esni key", Hash(ESNIContents), key_length)
//	iv  = HKDF-Expand-Label(Zx, "esni iv", Hash(ESNIContents), iv_length)
//
// with ESNIContents = record_digest<0..2^16-1> || KeyShareEntry ||
// client_hello_random.
func esniKeyIV(cs esniSuite, z []byte, c *ClientEncryptedSNI, clientRandom []byte) (cipher.AEAD, []byte, error) {
	zx, err := hkdf.Extract(cs.hash, z, make([]byte, cs.hash().Size()))
	if err != nil {
		return nil, nil, fmt.Errorf("ech: HKDF-Extract: %w", err)
	}
	var b cryptobyte.Builder
	addU16Bytes(&b, c.RecordDigest)
	addKeyShares(&b, []KeyShare{c.KeyShare})
	b.AddBytes(clientRandom)
	contents, err := b.Bytes()
	if err != nil {
		return nil, nil, fmt.Errorf("ech: ESNIContents: %w", err)
	}
	h := cs.hash()
	h.Write(contents)
	ctx := h.Sum(nil)
	key, err := ExpandLabel(cs.hash, zx, "esni key", ctx, cs.keyLen)
	if err != nil {
		return nil, nil, err
	}
	iv, err := ExpandLabel(cs.hash, zx, "esni iv", ctx, 12)
	if err != nil {
		return nil, nil, err
	}
	aead, err := cs.aead(key)
	if err != nil {
		return nil, nil, fmt.Errorf("ech: ESNI AEAD: %w", err)
	}
	return aead, iv, nil
}

// MarshalServerNameList encodes a ServerNameList with one host_name.
func MarshalServerNameList(name string) ([]byte, error) {
	if name == "" {
		return nil, invalid("ServerNameList", "host_name", "empty")
	}
	var b cryptobyte.Builder
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		b.AddUint8(0) // host_name
		addU16Bytes(b, []byte(name))
	})
	return b.Bytes()
}

// ESNISealOptions chooses what SealESNI uses. The zero value takes the
// first group and cipher suite of the ESNIKeys that this package supports,
// crypto/rand, and a random nonce.
type ESNISealOptions struct {
	Group uint16    // key share group; 0 = first supported
	Suite uint16    // cipher suite; 0 = first supported
	Rand  io.Reader // for the ephemeral key and the nonce
}

// ESNISealed is the client side's result: the extension and the secrets it
// must keep to check the server's answer.
type ESNISealed struct {
	Ext     *ClientEncryptedSNI
	ExtData []byte             // marshalled Ext, the extension body
	Nonce   [ESNINonceLen]byte // to compare with ServerEncryptedSNI.nonce
	Private *ecdh.PrivateKey   // the ESNI ephemeral key
	Inner   []byte             // ClientESNIInner plaintext
}

// SealESNI encrypts serverName for the ESNIKeys as draft-03 §5.1.1 says.
// clientRandom is ClientHello.random; keyShareExt is the body of the
// ClientHello's key_share extension (KeyShareClientHello), the AAD. The
// keys must already pass Validate (the caller decides the time).
func SealESNI(keys *ESNIKeys, serverName string, clientRandom, keyShareExt []byte, opts *ESNISealOptions) (*ESNISealed, error) {
	var o ESNISealOptions
	if opts != nil {
		o = *opts
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if len(clientRandom) != 32 {
		return nil, invalid("ClientHello", "random", fmt.Sprintf("%d bytes, want 32", len(clientRandom)))
	}
	server, suite, err := chooseESNI(keys, o.Group, o.Suite)
	if err != nil {
		return nil, err
	}
	sni, err := MarshalServerNameList(serverName)
	if err != nil {
		return nil, err
	}
	if len(sni) > int(keys.PaddedLength) {
		return nil, invalid("ESNIKeys", "padded_length",
			fmt.Sprintf("ServerNameList of %d bytes does not fit in %d", len(sni), keys.PaddedLength))
	}
	priv, err := generateECDH(server.Group, o.Rand)
	if err != nil {
		return nil, err
	}
	out := &ESNISealed{Private: priv}
	if _, err := io.ReadFull(o.Rand, out.Nonce[:]); err != nil {
		return nil, fmt.Errorf("ech: reading randomness: %w", err)
	}
	out.Inner = slices.Concat(out.Nonce[:], sni, make([]byte, int(keys.PaddedLength)-len(sni)))
	digest, err := keys.RecordDigest(suite)
	if err != nil {
		return nil, err
	}
	out.Ext = &ClientEncryptedSNI{Suite: suite, RecordDigest: digest,
		KeyShare: KeyShare{Group: server.Group, Data: priv.PublicKey().Bytes()}}
	z, err := esniECDH(priv, server)
	if err != nil {
		return nil, err
	}
	cs, _ := esniAEAD(suite)
	aead, iv, err := esniKeyIV(cs, z, out.Ext, clientRandom)
	if err != nil {
		return nil, err
	}
	out.Ext.EncryptedSNI = aead.Seal(nil, iv, out.Inner, keyShareExt)
	if out.ExtData, err = out.Ext.Marshal(); err != nil {
		return nil, err
	}
	return out, nil
}

// chooseESNI picks the server key share and cipher suite to use.
func chooseESNI(keys *ESNIKeys, group, suite uint16) (KeyShare, uint16, error) {
	var share KeyShare
	found := false
	for _, ks := range keys.Keys {
		if _, err := esniCurve(ks.Group); err == nil && (group == 0 || ks.Group == group) {
			share, found = ks, true
			break
		}
	}
	if !found {
		return KeyShare{}, 0, unsupported("ESNIKeys", "keys", "no key share of a usable group")
	}
	for _, cs := range keys.CipherSuites {
		if _, err := esniAEAD(cs); err == nil && (suite == 0 || cs == suite) {
			return share, cs, nil
		}
	}
	return KeyShare{}, 0, unsupported("ESNIKeys", "cipher_suites", "no usable cipher suite")
}

// esniECDH computes Z: the X25519 output or the x-coordinate of the NIST
// curve point, as TLS 1.3 uses them (RFC 8446 §7.4).
func esniECDH(priv *ecdh.PrivateKey, peer KeyShare) ([]byte, error) {
	pub, err := priv.Curve().NewPublicKey(peer.Data)
	if err != nil {
		return nil, &FieldError{Struct: "KeyShareEntry", Field: "key_exchange", Reason: err.Error(), Err: ErrInvalid}
	}
	z, err := priv.ECDH(pub)
	if err != nil {
		return nil, &FieldError{Struct: "KeyShareEntry", Field: "key_exchange", Reason: err.Error(), Err: ErrInvalid}
	}
	return z, nil
}

// ctEqual compares two byte strings in constant time.
func ctEqual(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }
