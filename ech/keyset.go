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
	// RetireAt ends an accepted-only key's grace: from then on the set no
	// longer offers it (see KeySet) and Expire drops it. Zero means never.
	RetireAt time.Time
	// File is the PEM file name inside a key-set directory; SaveKeySet
	// fills it in, LoadKeySet reads it from the manifest.
	File string
}

// KeySet is a server's ECH keys, newest first: the published ones and the
// retired ones still accepted during a grace period. The zero value is an
// empty set that reads time.Now; a KeySet is safe for concurrent use and
// must not be copied.
//
// A retired key whose RetireAt is not after the set's clock is past its
// grace: Lookup, Keys, TLSKeys and TLSKeysSupported leave it out at once,
// whether or not Expire has dropped it yet, so a server never accepts it
// (and ConfigList never publishes a retired key).
type KeySet struct {
	mu      sync.RWMutex
	entries []KeyEntry
	clock   func() time.Time // nil means time.Now
	onRead  func()           // see OnRead
}

// OnRead sets f to be called at the start of every Keys, Lookup, TLSKeys,
// TLSKeysSupported and ConfigList call, before the set is read and outside
// its lock, so f may Replace the set's keys. A watcher of the set's
// directory uses it to catch, on every handshake, a rotation another
// process made since its last poll. nil removes the hook.
func (ks *KeySet) OnRead(f func()) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	ks.onRead = f
}

// beforeRead runs the OnRead hook, if any.
func (ks *KeySet) beforeRead() {
	ks.mu.RLock()
	f := ks.onRead
	ks.mu.RUnlock()
	if f != nil {
		f()
	}
}

// SetClock makes the set read now for grace periods instead of time.Now
// (tests inject one; nil restores time.Now).
func (ks *KeySet) SetClock(now func() time.Time) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	ks.clock = now
}

// Now reads the set's clock.
func (ks *KeySet) Now() time.Time {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	return ks.now()
}

// now reads the clock; the caller holds ks.mu.
func (ks *KeySet) now() time.Time {
	if ks.clock == nil {
		return time.Now()
	}
	return ks.clock()
}

// live reports whether e is still usable at now: published, or accepted
// with no RetireAt or one after now.
func (e *KeyEntry) live(now time.Time) bool {
	return e.Published || e.RetireAt.IsZero() || now.Before(e.RetireAt)
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

// Entries returns a copy of the entries, newest first, including retired
// keys past their grace that Expire has not dropped yet.
func (ks *KeySet) Entries() []KeyEntry {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	return append([]KeyEntry(nil), ks.entries...)
}

// Len returns the number of entries in the set (as Entries counts them).
func (ks *KeySet) Len() int {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	return len(ks.entries)
}

// Keys returns every key a server accepts now (published, and retired
// ones within their grace), newest first.
func (ks *KeySet) Keys() []*Key {
	ks.beforeRead()
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	now := ks.now()
	out := make([]*Key, 0, len(ks.entries))
	for i := range ks.entries {
		if ks.entries[i].live(now) {
			out = append(out, ks.entries[i].Key)
		}
	}
	return out
}

// All returns every key the set holds, newest first, including retired
// keys past their grace that Expire has not dropped yet: what a reader of
// captures made earlier needs to open old ClientHellos (echlab compare
// --keys). A server uses Keys and Lookup, which leave those out.
func (ks *KeySet) All() KeyList {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	out := make(KeyList, len(ks.entries))
	for i, e := range ks.entries {
		out[i] = e.Key
	}
	return out
}

// Lookup returns the keys accepted now whose config carries configID,
// newest first. Several keys can share an id; a server tries each of them.
func (ks *KeySet) Lookup(configID uint8) []*Key {
	ks.beforeRead()
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	now := ks.now()
	var out []*Key
	for i := range ks.entries {
		e := &ks.entries[i]
		if e.Key.Config.ConfigID == configID && e.live(now) {
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
	keys, err := ks.RotateKeys([]KeyOptions{opts}, grace, now)
	if err != nil {
		return nil, err
	}
	return keys[0], nil
}

// RotateKeys is Rotate for several new keys at once, one per element of
// opts, each with its own free config id; opts[0]'s key becomes the newest
// (the most preferred in ConfigList). Either every key is added or, on an
// error, the set is unchanged. With ks.PublishedOptions() as opts it
// replaces every published key with one like it (see RotationOptions).
func (ks *KeySet) RotateKeys(opts []KeyOptions, grace time.Duration, now time.Time) ([]*Key, error) {
	if len(opts) == 0 {
		return nil, invalid("KeySet", "published", "no key to rotate to")
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	keys := make([]*Key, len(opts))
	added := make([]KeyEntry, 0, len(opts))
	used := ks.usedIDs()
	for i, o := range opts {
		id, err := freeID(used, o.Rand)
		if err != nil {
			return nil, err
		}
		o.ConfigID = id
		if keys[i], err = GenerateKey(o); err != nil {
			return nil, err
		}
		used[id] = true
		added = append(added, KeyEntry{Key: keys[i], Published: true})
	}
	ks.retire(grace, now)
	ks.entries = append(added, ks.entries...)
	return keys, nil
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
	return freeID(ks.usedIDs(), r)
}

// usedIDs returns the config ids of every key in the set, past its grace or
// not (Expire has not dropped them yet, and a client may still send them).
func (ks *KeySet) usedIDs() map[uint8]bool {
	used := map[uint8]bool{}
	for _, e := range ks.entries {
		used[e.Key.Config.ConfigID] = true
	}
	return used
}

// freeID picks a random id not in used, by rejection sampling.
func freeID(used map[uint8]bool, r io.Reader) (uint8, error) {
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
		if e.live(now) {
			kept = append(kept, e)
		}
	}
	n := len(ks.entries) - len(kept)
	ks.entries = kept
	return n
}

// ConfigList returns the ECHConfigList of the published keys, newest
// first: the value of the ech SvcParam in DNS.
func (ks *KeySet) ConfigList() ([]byte, error) {
	ks.beforeRead()
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

// TLSKeys converts every key accepted now for crypto/tls
// (Config.EncryptedClientHelloKeys), newest first, with SendAsRetry set on
// the published ones; retired keys past their grace are left out. It fails with an
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
	ks.beforeRead()
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	now := ks.now()
	for _, e := range ks.entries {
		if !e.live(now) {
			continue
		}
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
