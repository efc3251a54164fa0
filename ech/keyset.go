package ech

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
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

// KeySetManifest is the file name of a key-set directory's manifest.
const KeySetManifest = "keyset.json"

// manifest is keyset.json: the keys of the set, newest first.
type manifest struct {
	Version int             `json:"version"`
	Keys    []manifestEntry `json:"keys"`
}

type manifestEntry struct {
	File      string     `json:"file"`
	ConfigID  uint8      `json:"config_id"`
	KEM       string     `json:"kem"`
	Published bool       `json:"published"`
	RetireAt  *time.Time `json:"retire_at,omitempty"`
}

// SaveKeySet writes ks into dir (created 0700 if needed): one ECH PEM file
// per key (0600) and the keyset.json manifest. Every file is written to a
// temporary name and renamed, and the manifest goes last, so a process
// watching dir sees either the old set or the new one. PEM files that the
// previous manifest listed and the new one does not are removed.
func SaveKeySet(dir string, ks *KeySet) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("ech: key set: %w", err)
	}
	old, _ := readManifest(dir) // a missing or broken old manifest only means nothing to clean up
	entries := ks.Entries()
	m := manifest{Version: 1}
	for i := range entries {
		e := &entries[i]
		if e.File == "" {
			e.File = keyFileName(e.Key)
		}
		pemBytes, err := MarshalPEM(e.Key)
		if err != nil {
			return err
		}
		if err := writeFileAtomic(filepath.Join(dir, e.File), pemBytes, 0o600); err != nil {
			return err
		}
		me := manifestEntry{File: e.File, ConfigID: e.Key.Config.ConfigID,
			KEM: KEMFlagName(e.Key.Config.KEM), Published: e.Published}
		if !e.RetireAt.IsZero() {
			t := e.RetireAt.UTC()
			me.RetireAt = &t
		}
		m.Keys = append(m.Keys, me)
	}
	js, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("ech: key set manifest: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(dir, KeySetManifest), append(js, '\n'), 0o644); err != nil {
		return err
	}
	ks.setFiles(entries)
	removeStale(dir, old, &m)
	return nil
}

// LoadKeySet reads a directory written by SaveKeySet. It reads only the
// manifest and the files it lists, in manifest order, so the result is
// deterministic; every key must match its config and the manifest.
func LoadKeySet(dir string) (*KeySet, error) {
	m, err := readManifest(dir)
	if err != nil {
		return nil, err
	}
	ks := &KeySet{}
	for _, me := range m.Keys {
		if me.File == "" || filepath.Base(me.File) != me.File || strings.HasPrefix(me.File, ".") {
			return nil, manifestErr(dir, fmt.Sprintf("file name %q must be a plain name inside the directory", me.File))
		}
		b, err := os.ReadFile(filepath.Join(dir, me.File))
		if err != nil {
			return nil, fmt.Errorf("ech: key set: %w", err)
		}
		f, err := ParsePEM(b)
		if err != nil {
			return nil, fmt.Errorf("ech: key set %s: %w", me.File, err)
		}
		if f.Key == nil {
			return nil, manifestErr(dir, fmt.Sprintf("%s holds no private key", me.File))
		}
		if f.Key.Config.ConfigID != me.ConfigID {
			return nil, manifestErr(dir, fmt.Sprintf("%s has config id %d, manifest says %d", me.File, f.Key.Config.ConfigID, me.ConfigID))
		}
		e := KeyEntry{Key: f.Key, Published: me.Published, File: me.File}
		if me.RetireAt != nil {
			e.RetireAt = *me.RetireAt
		}
		ks.entries = append(ks.entries, e)
	}
	return ks, nil
}

func readManifest(dir string) (*manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, KeySetManifest))
	if err != nil {
		return nil, fmt.Errorf("ech: key set: %w", err)
	}
	var m manifest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, manifestErr(dir, err.Error())
	}
	if m.Version != 1 {
		return nil, manifestErr(dir, fmt.Sprintf("version %d, want 1", m.Version))
	}
	return &m, nil
}

func manifestErr(dir, reason string) error {
	return &FieldError{Struct: "KeySet", Field: filepath.Join(dir, KeySetManifest), Reason: reason, Err: ErrInvalid}
}

// setFiles records the file names SaveKeySet chose, matching entries by key.
func (ks *KeySet) setFiles(saved []KeyEntry) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	for i := range ks.entries {
		for _, s := range saved {
			if s.Key == ks.entries[i].Key {
				ks.entries[i].File = s.File
			}
		}
	}
}

// keyFileName names a key's PEM file after its config id and a hash of its
// public key, so names are stable and distinct.
func keyFileName(k *Key) string {
	sum := sha256.Sum256(k.Config.PublicKey)
	return fmt.Sprintf("ech-%03d-%x.pem", k.Config.ConfigID, sum[:6])
}

func removeStale(dir string, old, cur *manifest) {
	if old == nil {
		return
	}
	keep := map[string]bool{}
	for _, e := range cur.Keys {
		keep[e.File] = true
	}
	for _, e := range old.Keys {
		if !keep[e.File] && e.File != "" && filepath.Base(e.File) == e.File {
			os.Remove(filepath.Join(dir, e.File)) // best effort: the manifest no longer names it
		}
	}
}

// writeFileAtomic writes data to a temporary file in the same directory
// with mode perm, syncs it, and renames it over name.
func writeFileAtomic(name string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp*")
	if err != nil {
		return fmt.Errorf("ech: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return fmt.Errorf("ech: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("ech: writing %s: %w", name, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("ech: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("ech: %w", err)
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		return fmt.Errorf("ech: %w", err)
	}
	return nil
}
