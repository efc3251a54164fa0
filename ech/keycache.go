package ech

import (
	"bytes"
	"sync/atomic"

	"github.com/cloudflare/circl/hpke"
	"github.com/cloudflare/circl/kem"
)

// decodedKey is a Key's private key as circl decoded it, with the KEM and
// the bytes it was decoded from.
type decodedKey struct {
	kem  hpke.KEM
	priv []byte
	sk   kem.PrivateKey
}

// keyCache holds a Key's decoded private key. Decoding costs a scalar
// multiplication in circl, about half of Open's time, and a server opens
// many ClientHellos with the same few keys, so each Key keeps its own
// decoded form: it lives exactly as long as the Key, and a key that leaves
// its set leaves no secret behind in a process-wide table. The zero value
// is empty; a keyCache must not be copied.
type keyCache struct {
	p atomic.Pointer[decodedKey]
}

// decodedPrivateKey returns circl's private key for k under kemID,
// decoding it on first use. circl fills an X25519/X448 private key's public
// half lazily on the first Public call, which HPKE's decapsulation makes;
// two goroutines doing that at once on a shared key race, and one may read
// a half-written public key and fail to open a valid ClientHello. So the
// public half is computed here, before the decoded key is published to
// other goroutines, and after that circl only reads it. Goroutines that
// miss the cache at the same time each decode their own copy; one of them
// is kept. If k.PrivateKey was changed since, the cached form is not used.
func (k *Key) decodedPrivateKey(kemID hpke.KEM) (kem.PrivateKey, error) {
	if d := k.cache.p.Load(); d != nil && d.kem == kemID && bytes.Equal(d.priv, k.PrivateKey) {
		return d.sk, nil
	}
	sk, err := kemID.Scheme().UnmarshalBinaryPrivateKey(k.PrivateKey)
	if err != nil {
		return nil, err
	}
	sk.Public() // fill circl's lazy public key while sk is still ours alone
	k.cache.p.Store(&decodedKey{kem: kemID, priv: bytes.Clone(k.PrivateKey), sk: sk})
	return sk, nil
}
