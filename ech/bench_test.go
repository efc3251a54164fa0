package ech

import (
	"testing"

	"github.com/cloudflare/circl/hpke"
)

var benchKEMs = []struct {
	name string
	id   uint16
}{
	{"X25519", KEMX25519HKDFSHA256},
	{"P-256", KEMP256HKDFSHA256},
	{"P-384", KEMP384HKDFSHA384},
	{"P-521", KEMP521HKDFSHA512},
	{"X448", KEMX448HKDFSHA512},
	{"X-Wing", KEMXWing},
}

// benchSetup makes a key, an inner ClientHello and one sealed outer.
func benchSetup(b *testing.B, kem uint16) (*Key, []byte, *Sealed) {
	key := newKey(b, KeyOptions{KEM: kem, MaximumNameLength: 32})
	inner := buildHello(b, helloSpec{name: "secret.lab.test", alpn: []string{"h2", "http/1.1"},
		groups: []uint16{0x1d, 0x17}, shares: []KeyShare{x25519Share(b)}})
	s, err := Seal(&key.Config, inner, nil)
	if err != nil {
		b.Fatal(err)
	}
	return key, inner, s
}

// BenchmarkSeal: our Seal (parse inner, encode, pad, build outer, HPKE
// setup and seal, re-parse) against circl's SetupBaseS+Seal alone on the
// same payload and AAD sizes.
func BenchmarkSeal(b *testing.B) {
	for _, k := range benchKEMs {
		key, inner, s := benchSetup(b, k.id)
		b.Run(k.name+"/echlab", func(b *testing.B) {
			for b.Loop() {
				if _, err := Seal(&key.Config, inner, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(k.name+"/circl", func(b *testing.B) {
			pk, _ := publicKey(&key.Config)
			suite := hpke.NewSuite(hpke.KEM(k.id), hpke.KDF_HKDF_SHA256, hpke.AEAD_AES128GCM)
			aad := make([]byte, len(s.Outer.Raw)-4)
			for b.Loop() {
				snd, _ := suite.NewSender(pk, hpkeInfo(&key.Config))
				_, sealer, err := snd.Setup(nil)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := sealer.Seal(s.EncodedInner, aad); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOpen: our Open (AAD, key lookup, HPKE setup and open, decode,
// expand, re-parse, checks) against circl's SetupBaseR+Open alone.
func BenchmarkOpen(b *testing.B) {
	for _, k := range benchKEMs {
		key, _, s := benchSetup(b, k.id)
		keys := KeyList{key}
		b.Run(k.name+"/echlab", func(b *testing.B) {
			for b.Loop() {
				if _, err := Open(keys, s.Outer, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(k.name+"/circl", func(b *testing.B) {
			scheme, _ := KEMScheme(k.id)
			sk, _ := scheme.UnmarshalBinaryPrivateKey(key.PrivateKey)
			suite := hpke.NewSuite(hpke.KEM(k.id), hpke.KDF_HKDF_SHA256, hpke.AEAD_AES128GCM)
			aad := ClientHelloOuterAAD(s.Outer)
			for b.Loop() {
				r, _ := suite.NewReceiver(sk, hpkeInfo(&key.Config))
				opener, err := r.Setup(s.Enc)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := opener.Open(s.Outer.ECH.Payload, aad); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParseClientHello dissects a ClientHello crypto/tls wrote.
func BenchmarkParseClientHello(b *testing.B) {
	rec := testdataHellos(b)["go-ech-outer.bin"]
	b.SetBytes(int64(len(rec)))
	for b.Loop() {
		if _, err := ParseClientHelloRecords(rec); err != nil {
			b.Fatal(err)
		}
	}
}
