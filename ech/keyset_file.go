package ech

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

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
// previous manifest listed and the new one does not (keys that left the
// set) are removed, and so are leftovers at least StaleFileAge old:
// temporaries of an interrupted write and ech-*.pem files no manifest
// lists.
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
		// MarshalPEM re-encodes the config into Config.Raw; servers read
		// the live key's Raw on every handshake, so encode a copy.
		pemBytes, err := MarshalPEM(&Key{Config: e.Key.Config, PrivateKey: e.Key.PrivateKey})
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
	removeUnlisted(dir, old, &m)
	removeLeftovers(dir, &m, time.Now())
	return nil
}

// LoadKeySet reads a directory written by SaveKeySet. It reads only the
// manifest and the files it lists, in manifest order, so the result is
// deterministic; every key must match its config and the manifest. After
// a successful load it removes, best effort, the leftovers SaveKeySet
// would (see StaleFileAge), so a writer killed mid-write leaves no private
// key behind once anyone loads the set.
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
	removeLeftovers(dir, m, time.Now())
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
