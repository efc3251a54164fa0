package ech

import (
	"os"
	"path/filepath"
	"strings"
	"time"
)

// StaleFileAge is how old a leftover file in a key-set directory must be
// before SaveKeySet or LoadKeySet removes it: a temporary of an interrupted
// write (".ech-*.pem.tmp*", ".keyset.json.tmp*", which for a PEM holds a
// private key) or an "ech-*.pem" file the manifest does not list. A writer
// creates its temporaries and new PEM files only milliseconds before it
// renames them and writes the manifest that lists them, so a process
// loading the directory meanwhile (a server or resolver watching it) never
// removes a file a live writer still needs; anything a minute old is left
// over from a writer that died (kill -9) or an older set.
const StaleFileAge = time.Minute

// removeUnlisted removes the PEM files the previous manifest listed and
// cur does not: keys that left the set (expired, or replaced by --force).
// They go at once, whatever their age.
func removeUnlisted(dir string, old, cur *manifest) {
	if old == nil {
		return
	}
	keep := listed(cur)
	for _, e := range old.Keys {
		if !keep[e.File] && e.File != "" && filepath.Base(e.File) == e.File {
			os.Remove(filepath.Join(dir, e.File)) // best effort: the manifest no longer names it
		}
	}
}

// removeLeftovers removes, best effort, the temporaries and unlisted
// ech-*.pem files of dir that are at least StaleFileAge old at now. Files
// the manifest m lists are never touched.
func removeLeftovers(dir string, m *manifest, now time.Time) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	keep := listed(m)
	for _, de := range ents {
		name := de.Name()
		if keep[name] || !de.Type().IsRegular() || !isLeftover(name) {
			continue
		}
		info, err := de.Info()
		if err != nil || now.Sub(info.ModTime()) < StaleFileAge {
			continue
		}
		os.Remove(filepath.Join(dir, name)) // best effort: a read-only folder keeps its files
	}
}

// isLeftover reports whether name is one of the files a key-set directory
// gets from SaveKeySet: a key's PEM file or a temporary of one, or a
// temporary of the manifest.
func isLeftover(name string) bool {
	switch {
	case strings.HasPrefix(name, "ech-") && strings.HasSuffix(name, ".pem"):
		return true
	case strings.HasPrefix(name, ".ech-") && strings.Contains(name, ".pem.tmp"):
		return true
	case strings.HasPrefix(name, "."+KeySetManifest+".tmp"):
		return true
	}
	return false
}

func listed(m *manifest) map[string]bool {
	keep := map[string]bool{}
	for _, e := range m.Keys {
		keep[e.File] = true
	}
	return keep
}
