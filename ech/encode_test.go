package ech

import (
	"errors"
	"slices"
	"testing"

	"github.com/cloudflare/circl/hpke"
	"golang.org/x/crypto/cryptobyte"
)

// sealRaw puts an arbitrary EncodedClientHelloInner, HPKE-sealed to key,
// into a copy of the outer ClientHello template.
func sealRaw(t testing.TB, key *Key, template *ClientHello, encoded []byte) *ClientHello {
	t.Helper()
	pk, err := publicKey(&key.Config)
	if err != nil {
		t.Fatal(err)
	}
	snd, _ := hpke.NewSuite(hpke.KEM(key.Config.KEM), hpke.KDF_HKDF_SHA256, hpke.AEAD_AES128GCM).NewSender(pk, hpkeInfo(&key.Config))
	enc, sealer, err := snd.Setup(nil)
	if err != nil {
		t.Fatal(err)
	}
	var b cryptobyte.Builder
	b.AddUint8(0)
	b.AddUint16(1)
	b.AddUint16(1)
	b.AddUint8(key.Config.ConfigID)
	addU16Bytes(&b, enc)
	addU16Bytes(&b, make([]byte, len(encoded)+16))
	o := *template
	o.Extensions = slices.Clone(template.Extensions)
	o.SetExtension(ExtEncryptedHello, b.BytesOrPanic())
	raw, _ := o.Marshal()
	outer, err := ParseClientHello(raw)
	if err != nil {
		t.Fatal(err)
	}
	ct, _ := sealer.Seal(encoded, ClientHelloOuterAAD(outer))
	copy(raw[outer.ECH.PayloadOffset:], ct)
	outer, err = ParseClientHello(raw)
	if err != nil {
		t.Fatal(err)
	}
	return outer
}

func TestOpenRejectsBadInner(t *testing.T) {
	key := newKey(t, KeyOptions{})
	innerMsg := buildHello(t, helloSpec{name: "secret.lab.test", groups: []uint16{0x1d}, shares: []KeyShare{x25519Share(t)}})
	s, err := Seal(&key.Config, innerMsg, nil)
	if err != nil {
		t.Fatal(err)
	}
	inner := s.Inner
	encode := func(pad []byte, f func(c *ClientHello)) []byte {
		c := *inner
		c.Extensions = slices.Clone(inner.Extensions)
		f(&c)
		e, err := EncodeClientHelloInner(&c, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		return append(e, pad...)
	}
	refs := func(types ...uint16) func(c *ClientHello) {
		return func(c *ClientHello) {
			for _, typ := range types {
				c.RemoveExtension(typ)
			}
			c.Extensions = append([]HelloExtension{{Type: ExtOuterExtensions, Data: u16List(1, types)}}, c.Extensions...)
		}
	}
	same := func(*ClientHello) {}
	outerECHExt, _ := s.Outer.Extension(ExtEncryptedHello)
	outerECHBody := outerECHExt.Data
	for _, tc := range []struct {
		name    string
		encoded []byte
		want    error
		field   string
	}{
		{"good", encode([]byte{0, 0, 0}, same), nil, ""},
		{"good compressed", encode(nil, refs(ExtSupportedGroups, ExtSignatureAlgorithms)), nil, ""},
		{"bad padding", encode([]byte{0, 0, 1}, same), ErrBadPadding, "zeros"},
		{"references ech", encode(nil, refs(ExtEncryptedHello)), ErrOuterExtensions, "ech_outer_extensions"},
		{"references missing", encode(nil, refs(ExtCookie)), ErrOuterExtensions, "ech_outer_extensions"},
		{"references twice", encode(nil, refs(ExtSupportedGroups, ExtSupportedGroups)), ErrOuterExtensions, "ech_outer_extensions"},
		{"wrong order", encode(nil, refs(ExtSignatureAlgorithms, ExtSupportedGroups)), ErrOuterExtensions, "ech_outer_extensions"},
		{"empty list", encode(nil, func(c *ClientHello) { c.SetExtension(ExtOuterExtensions, []byte{0}) }), ErrMalformed, "ech_outer_extensions"},
		{"no inner marker", encode(nil, func(c *ClientHello) { c.RemoveExtension(ExtEncryptedHello) }), ErrInnerType, "encrypted_client_hello"},
		{"outer type inside", encode(nil, func(c *ClientHello) { c.SetExtension(ExtEncryptedHello, outerECHBody) }), ErrInnerType, "encrypted_client_hello"},
		{"offers TLS 1.2", encode(nil, func(c *ClientHello) {
			c.SetExtension(ExtSupportedVersions, u16List(1, []uint16{VersionTLS13, VersionTLS12}))
		}), ErrInvalid, "supported_versions"},
		{"garbage", []byte{3, 3, 1}, ErrMalformed, "client_hello"},
	} {
		outer := sealRaw(t, key, s.Outer, tc.encoded)
		o, err := Open(KeyList{key}, outer, nil)
		if tc.want == nil {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			} else if o.Inner.ServerName != "secret.lab.test" {
				t.Errorf("%s: inner SNI %q", tc.name, o.Inner.ServerName)
			}
			continue
		}
		var fe *FieldError
		if !errors.Is(err, tc.want) || !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%s: %v, want %v on field %s", tc.name, err, tc.want, tc.field)
		}
	}
}

func TestDecodeSessionIDMustBeEmpty(t *testing.T) {
	inner, _ := ParseClientHello(buildHello(t, helloSpec{name: "a.lab.test", groups: []uint16{0x1d}, shares: []KeyShare{x25519Share(t)}}))
	withSID := *inner
	raw, _ := withSID.Marshal() // keeps the 32-byte session id
	_, _, err := DecodeClientHelloInner(raw[4:], inner)
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "legacy_session_id" {
		t.Errorf("%v, want an error on legacy_session_id", err)
	}
}

func TestPaddingRecommended(t *testing.T) {
	for _, tc := range []struct {
		name         string
		encLen, maxN int
		want         int
	}{
		{"secret.lab.test", 100, 0, 28},              // 100 -> 128
		{"secret.lab.test", 100, 64, 49 + 11},        // 100+49=149 -> 160
		{"", 100, 20, 29 + 31 - (100+29-1)%32},       // no SNI: L+9
		{"a-very-long-name.lab.test", 128, 10, 0},    // already aligned, name longer than L
		{"x.lab.test", 127, 10, 0 + 31 - (127-1)%32}, // 127 -> 128
	} {
		got := recommendedPadding(tc.name, tc.encLen, tc.maxN)
		if got != tc.want || (tc.encLen+got)%32 != 0 {
			t.Errorf("%q len %d L %d: padding %d, want %d", tc.name, tc.encLen, tc.maxN, got, tc.want)
		}
	}
}
