package ech

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"strings"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// PEM block types of the ECH PEM file format (RFC 9934 §3).
const (
	PEMPrivateKey = "PRIVATE KEY"
	PEMECHConfig  = "ECHCONFIG"
)

// PKCS#8 algorithm OIDs (DER contents) for the KEM private keys. X25519 and
// X448 are RFC 8410's; X-Wing's is from draft-connolly-cfrg-xwing-kem.
// X25519Kyber768Draft00 has no registered OID, so echlab uses one it minted
// in the UUID arc (2.25, ITU-T X.667): 2.25.127818208163139673957064174402134647636.
var (
	oidX25519      = []byte{0x2b, 0x65, 0x6e}
	oidX448        = []byte{0x2b, 0x65, 0x6f}
	oidXWing       = []byte{0x2b, 0x06, 0x01, 0x04, 0x01, 0x83, 0xe6, 0x2d, 0x81, 0xc8, 0x7a}
	oidECPublicKey = []byte{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01}
	oidKyberDraft  = []byte{0x69, 0x81, 0xc0, 0xa8, 0xf2, 0x8d, 0xca, 0xb2, 0xc2, 0x9c,
		0xbd, 0xaf, 0xc2, 0xf6, 0xc2, 0xc8, 0x8a, 0xf2, 0xc6, 0x54}
)

// PEMFile is the content of an ECH PEM file: zero or one private key and
// one ECHConfigList. When Key is set, its Config is the list's config that
// matches the private key.
type PEMFile struct {
	Key        *Key
	ConfigList *ConfigList
}

// MarshalPEM encodes k as an ECH PEM file (RFC 9934): a PKCS#8 PRIVATE KEY
// block followed by an ECHCONFIG block holding a one-config ECHConfigList.
func MarshalPEM(k *Key) ([]byte, error) {
	raw, err := k.Config.Marshal()
	if err != nil {
		return nil, err
	}
	list, err := MarshalConfigList(raw)
	if err != nil {
		return nil, err
	}
	der, err := MarshalPKCS8(k.Config.KEM, k.PrivateKey)
	if err != nil {
		return nil, err
	}
	out := pem.EncodeToMemory(&pem.Block{Type: PEMPrivateKey, Bytes: der})
	return append(out, pem.EncodeToMemory(&pem.Block{Type: PEMECHConfig, Bytes: list})...), nil
}

// ParsePEM reads an ECH PEM file: an optional PRIVATE KEY block, then an
// ECHCONFIG block. Text before or between the blocks is rejected; content
// after the ECHCONFIG block is ignored, as RFC 9934 §3 says, unless it holds
// a PRIVATE KEY block (a file in the wrong order). A private key must match
// the public key of one config of the list.
func ParsePEM(b []byte) (*PEMFile, error) {
	var blocks []*pem.Block
	rest := b
	for len(blocks) < 2 {
		if len(bytes.TrimSpace(rest)) == 0 {
			break
		}
		if i := bytes.Index(rest, []byte("-----BEGIN ")); i < 0 || len(bytes.TrimSpace(rest[:i])) != 0 {
			return nil, pemErr("text outside a PEM block")
		}
		blk, r := pem.Decode(rest)
		// pem.Decode skips a broken block and returns the next one: insist
		// that the block it found is the first one in rest.
		if blk == nil || bytes.Count(rest[:len(rest)-len(r)], []byte("-----BEGIN ")) != 1 {
			return nil, pemErr("unterminated PEM block or bad base64")
		}
		if len(blk.Headers) != 0 {
			return nil, pemErr(fmt.Sprintf("%s block has headers", blk.Type))
		}
		blocks, rest = append(blocks, blk), r
		if blk.Type == PEMECHConfig {
			break
		}
	}
	// What follows ECHCONFIG is ignored, except a private key: that is a
	// file in the wrong order, and ignoring the key would hide it.
	if bytes.Contains(rest, []byte("-----BEGIN "+PEMPrivateKey+"-----")) {
		return nil, pemErr(PEMPrivateKey + " block after " + PEMECHConfig + "; it must come first")
	}
	return pemFromBlocks(blocks)
}

func pemFromBlocks(blocks []*pem.Block) (*PEMFile, error) {
	switch {
	case len(blocks) == 0:
		return nil, pemErr("no PEM block")
	case blocks[0].Type != PEMPrivateKey && blocks[0].Type != PEMECHConfig:
		return nil, pemErr(fmt.Sprintf("unexpected %q block, want %q or %q", blocks[0].Type, PEMPrivateKey, PEMECHConfig))
	case blocks[len(blocks)-1].Type != PEMECHConfig:
		return nil, pemErr(fmt.Sprintf("missing %s block after %s", PEMECHConfig, blocks[0].Type))
	}
	list, err := ParseConfigList(blocks[len(blocks)-1].Bytes)
	if err != nil {
		return nil, fmt.Errorf("ech: PEM %s block: %w", PEMECHConfig, err)
	}
	f := &PEMFile{ConfigList: list}
	if len(blocks) == 1 {
		return f, nil
	}
	kemID, priv, err := ParsePKCS8(blocks[0].Bytes)
	if err != nil {
		return nil, err
	}
	for _, c := range list.Configs {
		if c.KEM != kemID {
			continue
		}
		if k, err := NewKey(c, priv); err == nil {
			f.Key = k
			return f, nil
		}
	}
	return nil, &FieldError{Struct: "PEM", Field: PEMPrivateKey, Err: ErrInvalid,
		Reason: fmt.Sprintf("%s key matches no config in the ECHConfigList", KEMName(kemID))}
}

func pemErr(reason string) error {
	return &FieldError{Struct: "PEM", Field: "file", Reason: reason, Err: ErrMalformed}
}

// MarshalPKCS8 encodes a KEM private key (RFC 9180 serialization) as the
// PKCS#8 PrivateKeyInfo that RFC 9934 puts in the PRIVATE KEY block.
func MarshalPKCS8(kemID uint16, priv []byte) ([]byte, error) {
	if _, err := PublicKeyOf(kemID, priv); err != nil {
		return nil, err
	}
	switch kemID {
	case KEMP256HKDFSHA256, KEMP384HKDFSHA384, KEMP521HKDFSHA512, KEMX25519HKDFSHA256:
		k, err := ecdhCurve(kemID).NewPrivateKey(priv)
		if err != nil {
			return nil, &FieldError{Struct: "Key", Field: "private_key", Reason: err.Error(), Err: ErrInvalid}
		}
		return x509.MarshalPKCS8PrivateKey(k)
	case KEMX448HKDFSHA512:
		return pkcs8(oidX448, func(b *cryptobyte.Builder) { b.AddASN1OctetString(priv) }), nil
	case KEMXWing:
		return pkcs8(oidXWing, func(b *cryptobyte.Builder) { b.AddBytes(priv) }), nil
	case KEMX25519Kyber768Dft0:
		return pkcs8(oidKyberDraft, func(b *cryptobyte.Builder) { b.AddBytes(priv) }), nil
	}
	return nil, unsupported("Key", "kem_id", fmt.Sprintf("no PKCS#8 encoding for KEM %#04x", kemID))
}

func pkcs8(oid []byte, inner func(*cryptobyte.Builder)) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Uint64(0)
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.OBJECT_IDENTIFIER, func(b *cryptobyte.Builder) { b.AddBytes(oid) })
		})
		b.AddASN1(cbasn1.OCTET_STRING, inner)
	})
	return b.BytesOrPanic() // only fixed-size fields: cannot fail
}

// ParsePKCS8 decodes a PKCS#8 PrivateKeyInfo holding an ECH KEM private
// key and returns the KEM id and the RFC 9180 serialized private key.
func ParsePKCS8(der []byte) (uint16, []byte, error) {
	bad := func(reason string) (uint16, []byte, error) {
		return 0, nil, &FieldError{Struct: "PKCS8", Field: "PrivateKeyInfo", Reason: reason, Err: ErrMalformed}
	}
	s := cryptobyte.String(der)
	var info, alg, oid, key cryptobyte.String
	var version int64
	if !s.ReadASN1(&info, cbasn1.SEQUENCE) || !s.Empty() {
		return bad("not a single DER SEQUENCE (trailing bytes?)")
	}
	if !info.ReadASN1Integer(&version) || (version != 0 && version != 1) ||
		!info.ReadASN1(&alg, cbasn1.SEQUENCE) || !alg.ReadASN1(&oid, cbasn1.OBJECT_IDENTIFIER) ||
		!info.ReadASN1(&key, cbasn1.OCTET_STRING) {
		return bad("truncated or malformed")
	}
	switch {
	case bytes.Equal(oid, oidECPublicKey):
		return parseECPKCS8(der)
	case bytes.Equal(oid, oidX25519), bytes.Equal(oid, oidX448):
		var inner cryptobyte.String
		if !key.ReadASN1(&inner, cbasn1.OCTET_STRING) || !key.Empty() {
			return bad("CurvePrivateKey is not an OCTET STRING")
		}
		if bytes.Equal(oid, oidX25519) {
			return KEMX25519HKDFSHA256, []byte(inner), nil
		}
		return KEMX448HKDFSHA512, []byte(inner), nil
	case bytes.Equal(oid, oidXWing):
		return KEMXWing, []byte(key), nil
	case bytes.Equal(oid, oidKyberDraft):
		return KEMX25519Kyber768Dft0, []byte(key), nil
	}
	return 0, nil, &FieldError{Struct: "PKCS8", Field: "algorithm", Err: ErrUnsupported,
		Reason: fmt.Sprintf("OID %x is not a KEM echlab knows", []byte(oid))}
}

func parseECPKCS8(der []byte) (uint16, []byte, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return 0, nil, &FieldError{Struct: "PKCS8", Field: "privateKey", Reason: err.Error(), Err: ErrMalformed}
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return 0, nil, &FieldError{Struct: "PKCS8", Field: "privateKey", Reason: fmt.Sprintf("%T", k), Err: ErrUnsupported}
	}
	ek, err := ec.ECDH()
	if err != nil {
		return 0, nil, &FieldError{Struct: "PKCS8", Field: "privateKey", Reason: err.Error(), Err: ErrUnsupported}
	}
	for _, id := range []uint16{KEMP256HKDFSHA256, KEMP384HKDFSHA384, KEMP521HKDFSHA512} {
		if ecdhCurve(id) == ek.Curve() {
			return id, ek.Bytes(), nil
		}
	}
	return 0, nil, &FieldError{Struct: "PKCS8", Field: "namedCurve", Reason: "curve is not P-256, P-384 or P-521", Err: ErrUnsupported}
}

func ecdhCurve(kemID uint16) ecdh.Curve {
	switch kemID {
	case KEMP256HKDFSHA256:
		return ecdh.P256()
	case KEMP384HKDFSHA384:
		return ecdh.P384()
	case KEMP521HKDFSHA512:
		return ecdh.P521()
	}
	return ecdh.X25519()
}

// DecodeConfigListText decodes the forms in which people paste an
// ECHConfigList: base64 (standard or URL alphabet, padding optional,
// whitespace ignored), an ech SvcParam ("ech=AEX…", `ech="AEX…"`, or a
// whole HTTPS record presentation line containing one), or an ECH PEM
// file. It returns the ECHConfigList bytes after checking their framing
// (ParseConfigListLenient): a list with bad configs inside is returned, so
// that a client can skip them and an inspector can name them.
func DecodeConfigListText(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "-----BEGIN ") {
		f, err := ParsePEM([]byte(s))
		if err != nil {
			return nil, err
		}
		return f.ConfigList.Raw, nil
	}
	if i := svcParamIndex(s); i >= 0 {
		s = s[i+len("ech="):]
		if strings.HasPrefix(s, `"`) {
			end := strings.Index(s[1:], `"`)
			if end < 0 {
				return nil, &FieldError{Struct: "SvcParam", Field: "ech", Reason: "unterminated quote", Err: ErrMalformed}
			}
			s = s[1 : end+1]
		} else if f := strings.Fields(s); len(f) > 0 {
			s = f[0]
		}
	}
	b, err := decodeBase64(s)
	if err != nil {
		return nil, err
	}
	if l, err := ParseConfigListLenient(b); l == nil {
		return nil, err
	}
	return b, nil
}

// svcParamIndex finds "ech=" at the start of s or after white space, so
// that only a SvcParam key matches, or returns -1.
func svcParamIndex(s string) int {
	for i := 0; i+4 <= len(s); i++ {
		if s[i:i+4] == "ech=" && (i == 0 || s[i-1] == ' ' || s[i-1] == '\t' || s[i-1] == '\n') {
			return i
		}
	}
	return -1
}

func decodeBase64(s string) ([]byte, error) {
	s = strings.Join(strings.Fields(s), "")
	s = strings.TrimRight(s, "=")
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, &FieldError{Struct: "ECHConfigList", Field: "base64", Reason: "not valid base64", Err: ErrMalformed}
}
