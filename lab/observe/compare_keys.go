package observe

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/echlab/echlab/ech"
)

// ErrNoKeySet reports a --keys folder that is neither a key set nor a
// folder of key sets.
var ErrNoKeySet = errors.New("lab: no ECH key set")

// LoadKeySets loads every key, retired ones included (a capture may predate
// the end of their grace), from each path: a key-set folder (one with a
// keyset.json, as echlab keygen writes) or a folder of key-set folders
// (such as a run's out/keys, one level down; folders without a keyset.json,
// like esni/, are passed over).
func LoadKeySets(paths ...string) (ech.KeyList, error) {
	var all ech.KeyList
	for _, p := range paths {
		dirs, err := keySetDirs(p)
		if err != nil {
			return nil, err
		}
		for _, d := range dirs {
			ks, err := ech.LoadKeySet(d)
			if err != nil {
				return nil, err
			}
			all = append(all, ks.All()...)
		}
	}
	return all, nil
}

// keySetDirs returns dir itself when it holds a keyset.json, else its
// subfolders that do.
func keySetDirs(dir string) ([]string, error) {
	if _, err := os.Stat(filepath.Join(dir, ech.KeySetManifest)); err == nil {
		return []string{dir}, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("lab: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("lab: keys: %w", err)
	}
	var dirs []string
	for _, e := range entries {
		sub := filepath.Join(dir, e.Name())
		if _, err := os.Stat(filepath.Join(sub, ech.KeySetManifest)); err == nil && e.IsDir() {
			dirs = append(dirs, sub)
		}
	}
	if len(dirs) == 0 {
		return nil, fmt.Errorf("%w in %s: it has no %s and no folder with one (make one with echlab keygen --keys DIR)", ErrNoKeySet, dir, ech.KeySetManifest)
	}
	sort.Strings(dirs)
	return dirs, nil
}
