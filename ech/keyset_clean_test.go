package ech

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestKeySetLeftoversRemoved simulates a keygen --rotate killed mid-write
// (a private-key temporary left behind) and a PEM file no manifest lists,
// both older than StaleFileAge, beside the same kinds of file written just
// now by a live writer: loading the set removes the old ones and keeps the
// fresh ones; saving it does the same once they are old.
func TestKeySetLeftoversRemoved(t *testing.T) {
	dir := t.TempDir()
	var ks KeySet
	if _, err := ks.Rotate(KeyOptions{}, time.Hour, t0); err != nil {
		t.Fatal(err)
	}
	if err := SaveKeySet(dir, &ks); err != nil {
		t.Fatal(err)
	}
	listed := ks.Entries()[0].File
	stray, _ := GenerateKey(KeyOptions{ConfigID: 9})
	pemBytes, _ := MarshalPEM(stray)
	write := func(name string, age time.Duration) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pemBytes, 0o600); err != nil {
			t.Fatal(err)
		}
		old := time.Now().Add(-age)
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
		return name
	}
	const old = StaleFileAge + time.Second
	gone := []string{
		write(".ech-009-aaaaaaaaaaaa.pem.tmp1234567", old), // killed writer's temporary: a private key
		write("ech-009-aaaaaaaaaaaa.pem", old),             // a key no manifest lists
		write("."+KeySetManifest+".tmp42", old),
	}
	fresh := []string{
		write(".ech-010-bbbbbbbbbbbb.pem.tmp7654321", 0), // a live writer's, about to be renamed
		write("ech-010-bbbbbbbbbbbb.pem", 0),             // renamed, its manifest not written yet
	}
	kept := []string{
		write("my-notes.pem", old), // not a name SaveKeySet makes
		write(".hidden", old),
	}
	// The listed key's file is old too, and must stay.
	oldTime := time.Now().Add(-old)
	os.Chtimes(filepath.Join(dir, listed), oldTime, oldTime)
	kept = append(kept, listed, KeySetManifest)

	loaded, err := LoadKeySet(dir)
	if err != nil || loaded.Len() != 1 {
		t.Fatalf("LoadKeySet: %v", err)
	}
	exists := func(name string) bool { _, err := os.Stat(filepath.Join(dir, name)); return err == nil }
	for _, n := range gone {
		if exists(n) {
			t.Errorf("LoadKeySet left the stale %s", n)
		}
	}
	for _, n := range append(fresh, kept...) {
		if !exists(n) {
			t.Errorf("LoadKeySet removed %s", n)
		}
	}

	// A minute later the live writer's files are leftovers too; saving
	// (here as a rotation would) removes them.
	for _, n := range fresh {
		os.Chtimes(filepath.Join(dir, n), oldTime, oldTime)
	}
	if err := SaveKeySet(dir, loaded); err != nil {
		t.Fatal(err)
	}
	for _, n := range fresh {
		if exists(n) {
			t.Errorf("SaveKeySet left the stale %s", n)
		}
	}
	for _, n := range kept {
		if !exists(n) {
			t.Errorf("SaveKeySet removed %s", n)
		}
	}
}

// TestKeySetExpiredKeyFileGone rotates with a grace period, expires the
// old key and saves: its PEM file goes at once (no age threshold), even
// when the previous manifest was lost.
func TestKeySetExpiredKeyFileGone(t *testing.T) {
	for _, lostManifest := range []bool{false, true} {
		dir := t.TempDir()
		var ks KeySet
		first, _ := ks.Rotate(KeyOptions{}, time.Hour, t0)
		if err := SaveKeySet(dir, &ks); err != nil {
			t.Fatal(err)
		}
		firstFile := ks.Entries()[0].File
		if _, err := ks.Rotate(KeyOptions{}, time.Hour, t0); err != nil {
			t.Fatal(err)
		}
		if err := SaveKeySet(dir, &ks); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, firstFile)); err != nil {
			t.Fatalf("the retired key's file went during its grace: %v", err)
		}
		if ks.Expire(t0.Add(time.Hour)) != 1 {
			t.Fatal("the retired key did not expire")
		}
		if lostManifest {
			os.Remove(filepath.Join(dir, KeySetManifest))
			old := time.Now().Add(-StaleFileAge - time.Second)
			os.Chtimes(filepath.Join(dir, firstFile), old, old)
		}
		if err := SaveKeySet(dir, &ks); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, firstFile)); !os.IsNotExist(err) {
			t.Errorf("lost manifest %v: file of expired key %d still there: %v", lostManifest, first.Config.ConfigID, err)
		}
	}
}
