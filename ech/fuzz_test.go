package ech

import (
	"math/rand/v2"
	"testing"
)

// fuzzKey is a fixed lab key derived from a constant seed, so that the
// seeds of FuzzOpen stay openable across runs without a private key in
// testdata.
func fuzzKey(t testing.TB) *Key {
	k, err := GenerateKey(KeyOptions{ConfigID: 1, MaximumNameLength: 16, Rand: rand.NewChaCha8([32]byte{'e', 'c', 'h'})})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func addHelloSeeds(f *testing.F) {
	for _, rec := range testdataHellos(f) {
		msg, _, err := HandshakeFromRecords(rec)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(msg)
	}
}

func FuzzParseClientHello(f *testing.F) {
	addHelloSeeds(f)
	for _, rec := range testdataHellos(f) {
		f.Add(rec)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ch, err := ParseClientHello(b)
		if err == nil {
			again, err := ch.Marshal()
			if err != nil || string(again) != string(ch.Raw) {
				t.Fatalf("parsed ClientHello does not re-marshal to its bytes: %v", err)
			}
			ClientHelloOuterAAD(ch)
		}
		RecordsNeeded(b)
		ParseClientHelloRecords(b)
	})
}

func FuzzParseServerHello(f *testing.F) {
	for _, rec := range serverHellos(f) {
		msg, _, _ := HandshakeFromRecords(rec)
		f.Add(msg)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		sh, err := ParseServerHello(b)
		if err == nil && sh.IsHRR && sh.ECHConfirmation != nil && len(sh.Confirmation()) != 8 {
			t.Fatal("HRR confirmation is not 8 bytes")
		}
		VerifyAccepted(b, b)
		VerifyHRRAccepted(b, b)
	})
}

// FuzzOpen feeds ClientHelloOuters to Open with trial decryption, and the
// same bytes to DecodeClientHelloInner (the parser of decrypted payloads),
// against a fixed outer ClientHello.
func FuzzOpen(f *testing.F) {
	key := fuzzKey(f)
	inner := buildHello(f, helloSpec{name: "secret.lab.test", alpn: []string{"h2"}, groups: []uint16{0x1d, 0x17},
		shares: []KeyShare{x25519Share(f)}})
	s, err := Seal(&key.Config, inner, &SealOptions{Compress: []uint16{ExtSupportedGroups, ExtSignatureAlgorithms}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(s.Outer.Raw)
	f.Add(s.EncodedInner)
	addHelloSeeds(f)
	keys := KeyList{key}
	f.Fuzz(func(t *testing.T, b []byte) {
		if outer, err := ParseClientHello(b); err == nil {
			if o, err := Open(keys, outer, &OpenOptions{TrialDecrypt: true}); err == nil {
				o.Context.OpenSecond(outer)
			}
		}
		if in, _, err := DecodeClientHelloInner(b, s.Outer); err == nil && in.ECH == nil {
			t.Fatal("decoded inner without the inner marker")
		}
	})
}
