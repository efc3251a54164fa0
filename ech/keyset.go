package ech

import (
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"io"
	"sync"
	"time"
)

// KeyEntry is one key of a KeySet and its rotation state.
type KeyEntry struct {
	Key *Key
	// Published keys go into the ECHConfigList served in DNS and into
	// retry_configs. Keys that are not published are still accepted (for
	// clients holding an old config) until RetireAt.
	Published bool
	// RetireAt is when Expire drops an accepted-only key; zero means never.
	RetireAt time.Time
	// File is the PEM file name inside a key-set directory; SaveKeySet
	// fills it in, LoadKeySet reads it from the manifest.
	File string
}

// KeySet is a server's ECH keys, newest first: the published ones and the
// retired ones still accepted during a grace period. The zero value is an
// empty set; a KeySet is safe for concurrent use and must not be copied.
type KeySet struct {
	mu      sync.RWMutex
	entries []KeyEntry
}

// Add puts k in the set as the newest key.
func (ks *KeySet) Add(k *Key, published bool) {
	ks.AddEntry(KeyEntry{Key: k, Published: published})
}

// AddEntry puts e in the set as the newest key.
func (ks *KeySet) AddEntry(e KeyEntry) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	ks.entries = append([]KeyEntry{e}, ks.entries...)
}

// Entries returns a copy of the entries, newest first.
func (ks *KeySet) Entries() []KeyEntry {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	return append([]KeyEntry(nil), ks.entries...)
}

// Len returns the number of keys in the set.
func (ks *KeySet) Len() int {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	return len(ks.entries)
}

// Keys returns every key (published and accepted), newest first.
func (ks *KeySet) Keys() []*Key {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	out := make([]*Key, len(ks.entries))
	for i, e := range ks.entries {
		out[i] = e.Key
	}
	return out
}

// Lookup returns the keys whose config carries configID, newest first.
// Several keys can share an id; a server tries each of them.
func (ks *KeySet) Lookup(configID uint8) []*Key {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	var out []*Key
	for _, e := range ks.entries {
		if e.Key.Config.ConfigID == configID {
			out = append(out, e.Key)
		}
	}
	return out
}

// Rotate generates a new published key with a config id that no key in the
// set uses (chosen by rejection sampling, as RFC 9849 §4.1 recommends).
// Keys published so far stay accepted until now+grace, but are no longer
// published. opts.ConfigID is ignored.
func (ks *KeySet) Rotate(opts KeyOptions, grace time.Duration, now time.Time) (*Key, error) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	id, err := ks.freeConfigID(opts.Rand)
	if err != nil {
		return nil, err
	}
	opts.ConfigID = id
	k, err := GenerateKey(opts)
	if err != nil {
		return nil, err
	}
	ks.retire(grace, now)
	ks.entries = append([]KeyEntry{{Key: k, Published: true}}, ks.entries...)
	return k, nil
}

// Retire stops publishing every published key; each stays accepted until
// now+grace. Rotate does this before adding its new key; call it directly
// to publish several new keys at once with Add.
func (ks *KeySet) Retire(grace time.Duration, now time.Time) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	ks.retire(grace, now)
}

func (ks *KeySet) retire(grace time.Duration, now time.Time) {
	for i := range ks.entries {
		if ks.entries[i].Published {
			ks.entries[i].Published = false
			ks.entries[i].RetireAt = now.Add(grace)
		}
	}
}

// FreeConfigID picks a random config id that no key in the set uses.
func (ks *KeySet) FreeConfigID(r io.Reader) (uint8, error) {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	return ks.freeConfigID(r)
}

func (ks *KeySet) freeConfigID(r io.Reader) (uint8, error) {
	used := map[uint8]bool{}
	for _, e := range ks.entries {
		used[e.Key.Config.ConfigID] = true
	}
	if len(used) == 256 {
		return 0, invalid("KeySet", "config_id", "all 256 config ids are in use")
	}
	if r == nil {
		r = rand.Reader
	}
	var b [1]byte
	for {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, fmt.Errorf("ech: reading randomness: %w", err)
		}
		if !used[b[0]] {
			return b[0], nil
		}
	}
}

// Expire drops the accepted-only keys whose RetireAt is not after now and
// returns how many it dropped. Published keys never expire.
func (ks *KeySet) Expire(now time.Time) int {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	kept := ks.entries[:0:0]
	for _, e := range ks.entries {
		if !e.Published && !e.RetireAt.IsZero() && !now.Before(e.RetireAt) {
			continue
		}
		kept = append(kept, e)
	}
	n := len(ks.entries) - len(kept)
	ks.entries = kept
	return n
}

// ConfigList returns the ECHConfigList of the published keys, newest
// first: the value of the ech SvcParam in DNS.
func (ks *KeySet) ConfigList() ([]byte, error) {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	var raws [][]byte
	for _, e := range ks.entries {
		if !e.Published {
			continue
		}
		raw, err := configRaw(&e.Key.Config)
		if err != nil {
			return nil, err
		}
		raws = append(raws, raw)
	}
	if len(raws) == 0 {
		return nil, invalid("KeySet", "published", "no published key")
	}
	return MarshalConfigList(raws...)
}

// RetryConfigList returns the list a server sends in retry_configs when it
// rejects ECH. It is the published list: retired keys are still accepted
// but never offered again.
func (ks *KeySet) RetryConfigList() ([]byte, error) { return ks.ConfigList() }

// TLSKeys converts every key for crypto/tls (Config.EncryptedClientHelloKeys),
// newest first, with SendAsRetry set on the published ones. It fails with an
// error wrapping ErrUnsupported if a key uses a KEM crypto/tls lacks.
func (ks *KeySet) TLSKeys() ([]tls.EncryptedClientHelloKey, error) {
	keys, skipped := ks.tlsKeys()
	if len(skipped) > 0 {
		_, err := skipped[0].TLSKey(false)
		return nil, err
	}
	return keys, nil
}

// TLSKeysSupported is TLSKeys that leaves out the keys crypto/tls cannot
// use and returns them as skipped.
func (ks *KeySet) TLSKeysSupported() (keys []tls.EncryptedClientHelloKey, skipped []*Key) {
	return ks.tlsKeys()
}

func (ks *KeySet) tlsKeys() (keys []tls.EncryptedClientHelloKey, skipped []*Key) {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	for _, e := range ks.entries {
		tk, err := e.Key.TLSKey(e.Published)
		if err != nil {
			skipped = append(skipped, e.Key)
			continue
		}
		keys = append(keys, tk)
	}
	return keys, skipped
}

// configRaw returns the encoded config, marshalling it if it was built by
// hand and never encoded.
// It never writes to c, so it is safe under a read lock.
func configRaw(c *Config) ([]byte, error) {
	if len(c.Raw) > 0 {
		return c.Raw, nil
	}
	cp := *c
	return cp.Marshal()
}
