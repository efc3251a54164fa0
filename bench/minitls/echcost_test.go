package main

import (
	"crypto/ecdh"
	"crypto/hpke"
	"testing"
)

// BenchmarkECHRecipient is a minimal reproducer of where crypto/tls's ECH
// server cost goes, with Go's own crypto/hpke and nothing of echlab's: for
// every ECH key it tries, on every handshake, crypto/tls's
// processECHClientHello turns the key's bytes into a private key
// (kem.NewPrivateKey, which derives the public key: a full X25519 scalar
// multiplication) and then sets up the HPKE recipient (the decapsulation,
// a second one). "parse-each-time" is that; "parsed-once" is the same
// recipient set up with a key parsed once, as echlab's ech.Open does. On
// the 2-core development machine: 95 against 50 µs. (crypto/tls offers no
// way to give it a parsed key: tls.EncryptedClientHelloKey.PrivateKey is
// bytes.)
func BenchmarkECHRecipient(b *testing.B) {
	kem := hpke.DHKEM(ecdh.X25519())
	sk, err := kem.GenerateKey()
	if err != nil {
		b.Fatal(err)
	}
	raw, err := sk.Bytes()
	if err != nil {
		b.Fatal(err)
	}
	kdf, aead := hpke.HKDFSHA256(), hpke.AES128GCM()
	info := []byte("tls ech\x00config")
	enc, _, err := hpke.NewSender(sk.PublicKey(), kdf, aead, info)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("parse-each-time", func(b *testing.B) {
		for b.Loop() {
			k, err := kem.NewPrivateKey(raw)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := hpke.NewRecipient(enc, k, kdf, aead, info); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parsed-once", func(b *testing.B) {
		for b.Loop() {
			if _, err := hpke.NewRecipient(enc, sk, kdf, aead, info); err != nil {
				b.Fatal(err)
			}
		}
	})
}
