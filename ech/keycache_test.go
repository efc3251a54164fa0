package ech

import (
	"bytes"
	"testing"

	"github.com/cloudflare/circl/hpke"
)

func TestDecodePrivateKeyCache(t *testing.T) {
	k, err := GenerateKey(KeyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := decodePrivateKey(hpke.KEM_X25519_HKDF_SHA256, k.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	b, err := decodePrivateKey(hpke.KEM_X25519_HKDF_SHA256, k.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Equal(b) {
		t.Fatal("cached key differs from the decoded one")
	}
	pub, _ := a.Public().MarshalBinary()
	if !bytes.Equal(pub, k.Config.PublicKey) {
		t.Fatal("cached private key does not match the config's public key")
	}
	// The same bytes under another KEM are another cache entry (and here
	// an invalid key), not the X25519 one.
	if _, err := decodePrivateKey(hpke.KEM_P256_HKDF_SHA256, make([]byte, 32)); err == nil {
		t.Fatal("a zero P-256 scalar decoded")
	}
	for i := 0; i < 2*maxCachedKeys; i++ {
		kk, _ := GenerateKey(KeyOptions{})
		if _, err := decodePrivateKey(hpke.KEM_X25519_HKDF_SHA256, kk.PrivateKey); err != nil {
			t.Fatal(err)
		}
	}
	privateKeys.Lock()
	n := len(privateKeys.m)
	privateKeys.Unlock()
	if n > maxCachedKeys {
		t.Fatalf("cache holds %d keys, bound is %d", n, maxCachedKeys)
	}
}
