package ech

import (
	"sync"

	"github.com/cloudflare/circl/hpke"
	"github.com/cloudflare/circl/kem"
)

// privateKeys caches decoded HPKE private keys. Decoding one costs a
// scalar multiplication in circl (it derives the public key), which was
// about half of Open's time; a server opens many ClientHellos with the same
// few keys. The cache is bounded: it is cleared when it grows past
// maxCachedKeys, which no real key set reaches.
var privateKeys struct {
	sync.Mutex
	m map[string]kem.PrivateKey
}

const maxCachedKeys = 256

// decodePrivateKey returns the circl private key for (kemID, priv), decoding
// it once.
func decodePrivateKey(kemID hpke.KEM, priv []byte) (kem.PrivateKey, error) {
	id := string([]byte{byte(kemID >> 8), byte(kemID)}) + string(priv)
	privateKeys.Lock()
	sk, ok := privateKeys.m[id]
	privateKeys.Unlock()
	if ok {
		return sk, nil
	}
	sk, err := kemID.Scheme().UnmarshalBinaryPrivateKey(priv)
	if err != nil {
		return nil, err
	}
	privateKeys.Lock()
	if privateKeys.m == nil || len(privateKeys.m) >= maxCachedKeys {
		privateKeys.m = make(map[string]kem.PrivateKey)
	}
	privateKeys.m[id] = sk
	privateKeys.Unlock()
	return sk, nil
}
