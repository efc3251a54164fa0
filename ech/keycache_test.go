package ech

import (
	"bytes"
	"reflect"
	"runtime"
	"sync"
	"testing"
	"time"
	"weak"

	"github.com/cloudflare/circl/hpke"
)

// TestOpenConcurrentFirstUse opens the same ClientHelloOuter from many
// goroutines at once with a key nobody has used yet, as parallel
// connections to a freshly started server do. circl computes an X25519 or
// X448 private key's public half lazily; before the fix the goroutines
// raced on it (go test -race flags it) and an Open could fail.
func TestOpenConcurrentFirstUse(t *testing.T) {
	const goroutines, rounds = 8, 40
	for _, kemID := range []uint16{KEMX25519HKDFSHA256, KEMX448HKDFSHA512, KEMP256HKDFSHA256, KEMXWing} {
		t.Run(KEMName(kemID), func(t *testing.T) {
			base := newKey(t, KeyOptions{KEM: kemID, ConfigID: 7})
			inner := buildHello(t, helloSpec{name: "secret.lab.test", alpn: []string{"h2"},
				groups: []uint16{0x1d}, shares: []KeyShare{x25519Share(t)}})
			s, err := Seal(&base.Config, inner, nil)
			if err != nil {
				t.Fatal(err)
			}
			for round := range rounds {
				fresh, err := NewKey(base.Config, base.PrivateKey) // a freshly loaded key: nothing decoded yet
				if err != nil {
					t.Fatal(err)
				}
				ks := &KeySet{}
				ks.Add(fresh, true)
				start := make(chan struct{})
				var wg sync.WaitGroup
				errs := make(chan error, goroutines)
				for range goroutines {
					wg.Go(func() {
						<-start
						if _, err := Open(ks, s.Outer, nil); err != nil {
							errs <- err
						}
					})
				}
				close(start)
				wg.Wait()
				close(errs)
				for err := range errs {
					t.Fatalf("round %d: concurrent Open with a fresh key failed: %v", round, err)
				}
			}
		})
	}
}

// decodedPointer is the address of the circl private key object k caches,
// for a weak pointer that does not keep it alive.
func decodedPointer(t *testing.T, k *Key) weak.Pointer[byte] {
	t.Helper()
	sk, err := k.decodedPrivateKey(hpke.KEM(k.Config.KEM))
	if err != nil {
		t.Fatal(err)
	}
	return weak.Make((*byte)(reflect.ValueOf(sk).UnsafePointer()))
}

// TestRetiredKeyLeavesNoDecodedSecret checks that the decoded private key
// of a key that left its set is not kept anywhere: once the set and the
// caller drop the key, the decoded form is garbage. The old process-wide
// cache kept every decoded key until it held 256 of them.
func TestRetiredKeyLeavesNoDecodedSecret(t *testing.T) {
	ks := &KeySet{}
	ptr := func() weak.Pointer[byte] { // in a function, so no stack slot keeps the key
		old, err := ks.Rotate(KeyOptions{}, time.Minute, t0)
		if err != nil {
			t.Fatal(err)
		}
		inner := buildHello(t, helloSpec{name: "secret.lab.test", groups: []uint16{0x1d}, shares: []KeyShare{x25519Share(t)}})
		s, err := Seal(&old.Config, inner, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Open(ks, s.Outer, nil); err != nil {
			t.Fatal(err)
		}
		return decodedPointer(t, old)
	}()
	if _, err := ks.Rotate(KeyOptions{}, time.Minute, t0); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	if ptr.Value() == nil {
		t.Fatal("the decoded key went while its key was still accepted") // the test would prove nothing
	}
	if n := ks.Expire(t0.Add(time.Minute)); n != 1 {
		t.Fatalf("Expire dropped %d keys, want 1", n)
	}
	for range 3 {
		runtime.GC()
	}
	if ptr.Value() != nil {
		t.Fatal("the decoded private key of an expired key is still reachable")
	}
}

func TestDecodedPrivateKey(t *testing.T) {
	k := newKey(t, KeyOptions{})
	a, err := k.decodedPrivateKey(hpke.KEM_X25519_HKDF_SHA256)
	if err != nil {
		t.Fatal(err)
	}
	b, err := k.decodedPrivateKey(hpke.KEM_X25519_HKDF_SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatal("second use decoded the key again")
	}
	pub, _ := a.Public().MarshalBinary()
	if !bytes.Equal(pub, k.Config.PublicKey) {
		t.Fatal("cached private key does not match the config's public key")
	}
	// The same bytes under another KEM are not the cached X25519 key.
	if _, err := k.decodedPrivateKey(hpke.KEM_P256_HKDF_SHA256); err != nil {
		t.Logf("as P-256: %v", err)
	} else if c, _ := k.decodedPrivateKey(hpke.KEM_P256_HKDF_SHA256); c.Scheme() != hpke.KEM_P256_HKDF_SHA256.Scheme() {
		t.Fatal("the P-256 decoding is the X25519 one")
	}
	// A key whose bytes were replaced is decoded again, not served stale.
	other := newKey(t, KeyOptions{})
	k.PrivateKey = other.PrivateKey
	c, err := k.decodedPrivateKey(hpke.KEM_X25519_HKDF_SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if pub, _ := c.Public().MarshalBinary(); !bytes.Equal(pub, other.Config.PublicKey) {
		t.Fatal("a replaced private key was served from the cache")
	}
}
