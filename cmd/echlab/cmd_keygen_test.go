package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/echlab/echlab/ech"
)

// published returns the published keys of the set in dir, newest first.
func published(t *testing.T, dir string) []*ech.Key {
	t.Helper()
	ks, err := ech.LoadKeySet(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []*ech.Key
	for _, e := range ks.Entries() {
		if e.Published {
			out = append(out, e.Key)
		}
	}
	return out
}

// TestKeygenRotateKeepsSettings runs the exact command line of issue 12:
// a rotation keeps the set's KEMs (in order), cipher suites, public name
// and maximum name length, and a flag given explicitly overrides its part
// (even when it equals the flag's default).
func TestKeygenRotateKeepsSettings(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "K")
	runKeygenTest(t, "--keys", dir, "--kem", "x25519,xwing", "--aead", "aes128gcm,chacha20poly1305",
		"--public-name", "front.example", "--max-name-length", "40")
	before := published(t, dir)
	suites := []ech.CipherSuite{{KDF: 1, AEAD: 1}, {KDF: 1, AEAD: 3}}
	type want struct {
		kems   []uint16
		suites []ech.CipherSuite
		name   string
		maxLen uint8
	}
	check := func(args []string, w want) []*ech.Key {
		t.Helper()
		runKeygenTest(t, append([]string{"--keys", dir, "--rotate", "--grace", "1h"}, args...)...)
		keys := published(t, dir)
		var kems []uint16
		for _, k := range keys {
			kems = append(kems, k.Config.KEM)
			c := k.Config
			if !slices.Equal(c.CipherSuites, w.suites) || c.PublicName != w.name || c.MaximumNameLength != w.maxLen {
				t.Errorf("rotate %v: config %d has suites %v, name %q, max %d; want %v, %q, %d",
					args, c.ConfigID, c.CipherSuites, c.PublicName, c.MaximumNameLength, w.suites, w.name, w.maxLen)
			}
		}
		if !slices.Equal(kems, w.kems) {
			t.Errorf("rotate %v: published KEMs %#x, want %#x", args, kems, w.kems)
		}
		return keys
	}
	pq := []uint16{ech.KEMX25519HKDFSHA256, ech.KEMXWing}
	after := check(nil, want{pq, suites, "front.example", 40})
	for _, k := range after {
		if slices.ContainsFunc(before, func(b *ech.Key) bool { return b.Config.ConfigID == k.Config.ConfigID }) {
			t.Errorf("rotation reused config id %d", k.Config.ConfigID)
		}
	}
	check([]string{"--public-name", "other.example"}, want{pq, suites, "other.example", 40})
	check([]string{"--max-name-length", "0"}, want{pq, suites, "other.example", 0})
	check([]string{"--aead", "aes256gcm"}, want{pq, []ech.CipherSuite{{KDF: 1, AEAD: 2}}, "other.example", 0})
	check([]string{"--kdf", "hkdf-sha384"}, want{pq, []ech.CipherSuite{{KDF: 2, AEAD: 2}}, "other.example", 0})
	check([]string{"--kem", "p256"}, want{[]uint16{ech.KEMP256HKDFSHA256}, []ech.CipherSuite{{KDF: 2, AEAD: 2}}, "other.example", 0})
}

// TestKeygenRotateRemovesKeyFiles: after a rotation with a grace period
// and a later rotation past it, the retired key's PEM file is gone; with
// --grace 0 the old keys and their files go at once.
func TestKeygenRotateRemovesKeyFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "K")
	runKeygenTest(t, "--keys", dir)
	pems := func() []string {
		m, _ := filepath.Glob(filepath.Join(dir, "*.pem"))
		return m
	}
	first := pems()
	runKeygenTest(t, "--keys", dir, "--rotate", "--grace", "10ms")
	if len(pems()) != 2 {
		t.Fatalf("during grace: %v, want the old and the new key file", pems())
	}
	time.Sleep(20 * time.Millisecond) // let the 10ms grace end
	runKeygenTest(t, "--keys", dir, "--rotate", "--grace", "0")
	if got := pems(); len(got) != 1 || slices.Contains(got, first[0]) {
		t.Fatalf("after grace and a --grace 0 rotation: %v, want only the newest key's file", got)
	}
	if _, err := os.Stat(first[0]); !os.IsNotExist(err) {
		t.Fatalf("the expired key's file is still there: %v", err)
	}
}
