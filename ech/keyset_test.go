package ech

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fixedClock is a settable clock for a KeySet.
type fixedClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fixedClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fixedClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func TestKeySetRotate(t *testing.T) {
	var ks KeySet
	ks.SetClock((&fixedClock{t: t0}).now)
	first, err := ks.Rotate(KeyOptions{}, time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	second, err := ks.Rotate(KeyOptions{KEM: KEMP256HKDFSHA256}, 2*time.Hour, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if first.Config.ConfigID == second.Config.ConfigID {
		t.Fatal("rotation reused a config id")
	}
	e := ks.Entries()
	if len(e) != 2 || e[0].Key != second || !e[0].Published || e[1].Published {
		t.Fatalf("entries after rotation: %+v", e)
	}
	if want := t0.Add(time.Minute + 2*time.Hour); !e[1].RetireAt.Equal(want) {
		t.Fatalf("old key retires at %v, want %v", e[1].RetireAt, want)
	}
	list, _ := ks.ConfigList()
	want, _ := MarshalConfigList(second.Config.Raw)
	if !bytes.Equal(list, want) {
		t.Fatal("published list is not just the new key")
	}
	if got := ks.Lookup(first.Config.ConfigID); len(got) != 1 || got[0] != first {
		t.Fatal("retired key is no longer found by Lookup")
	}
	if n := ks.Expire(t0.Add(time.Minute + 2*time.Hour - time.Nanosecond)); n != 0 {
		t.Fatalf("expired %d keys before the grace period ended", n)
	}
	if n := ks.Expire(t0.Add(time.Minute + 2*time.Hour)); n != 1 || ks.Len() != 1 {
		t.Fatalf("Expire at the deadline dropped %d, left %d", n, ks.Len())
	}
	if len(ks.Lookup(first.Config.ConfigID)) != 0 {
		t.Fatal("expired key still found")
	}
	if n := ks.Expire(t0.Add(1000 * time.Hour)); n != 0 {
		t.Fatal("a published key expired")
	}
}

func TestKeySetPublishedNewestFirst(t *testing.T) {
	var ks KeySet
	a, _ := GenerateKey(KeyOptions{ConfigID: 1})
	b, _ := GenerateKey(KeyOptions{ConfigID: 2})
	c, _ := GenerateKey(KeyOptions{ConfigID: 3})
	ks.Add(a, true)
	ks.Add(b, false)
	ks.Add(c, true)
	list, err := ks.ConfigList()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := MarshalConfigList(c.Config.Raw, a.Config.Raw)
	if !bytes.Equal(list, want) {
		t.Fatal("ConfigList is not the published keys newest first")
	}
	retry, _ := ks.RetryConfigList()
	if !bytes.Equal(retry, list) {
		t.Fatal("retry list differs from the published list")
	}
	keys := ks.Keys()
	if len(keys) != 3 || keys[0] != c || keys[2] != a {
		t.Fatal("Keys order")
	}
	tk, err := ks.TLSKeys()
	if err != nil || len(tk) != 3 || !tk[0].SendAsRetry || tk[1].SendAsRetry || !tk[2].SendAsRetry {
		t.Fatalf("TLSKeys SendAsRetry flags wrong: %v", err)
	}
	var empty KeySet
	if _, err := empty.ConfigList(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty set ConfigList: %v", err)
	}
}

func TestKeySetSharedConfigID(t *testing.T) {
	var ks KeySet
	a, _ := GenerateKey(KeyOptions{ConfigID: 5})
	b, _ := GenerateKey(KeyOptions{ConfigID: 5, KEM: KEMP256HKDFSHA256})
	ks.Add(a, false)
	ks.Add(b, true)
	if got := ks.Lookup(5); len(got) != 2 || got[0] != b || got[1] != a {
		t.Fatal("Lookup must return every key with the id, newest first")
	}
}

func TestKeySetUniqueIDsUntilFull(t *testing.T) {
	var ks KeySet
	seen := map[uint8]bool{}
	for i := 0; i < 256; i++ {
		k, err := ks.Rotate(KeyOptions{}, time.Hour, t0)
		if err != nil {
			t.Fatalf("rotation %d: %v", i, err)
		}
		if seen[k.Config.ConfigID] {
			t.Fatalf("rotation %d reused id %d", i, k.Config.ConfigID)
		}
		seen[k.Config.ConfigID] = true
	}
	if _, err := ks.Rotate(KeyOptions{}, time.Hour, t0); !errors.Is(err, ErrInvalid) {
		t.Fatalf("257th rotation: %v, want ErrInvalid", err)
	}
	ks.Expire(t0.Add(time.Hour))
	if ks.Len() != 1 {
		t.Fatalf("%d keys left after expiry, want 1", ks.Len())
	}
}

func TestSaveLoadKeySet(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	var ks KeySet
	old, _ := ks.Rotate(KeyOptions{KEM: KEMX448HKDFSHA512}, time.Hour, t0)
	_, _ = ks.Rotate(KeyOptions{KEM: KEMXWing, PublicName: "other.lab.test"}, time.Hour, t0)
	if err := SaveKeySet(dir, &ks); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	var pems int
	for _, e := range entries {
		info, _ := e.Info()
		switch {
		case strings.HasSuffix(e.Name(), ".pem"):
			pems++
			if info.Mode().Perm() != 0o600 {
				t.Errorf("%s has mode %v, want 0600", e.Name(), info.Mode().Perm())
			}
		case e.Name() == KeySetManifest:
		default:
			t.Errorf("unexpected file %s (temp file left behind?)", e.Name())
		}
	}
	if pems != 2 {
		t.Fatalf("%d PEM files, want 2", pems)
	}
	if info, _ := os.Stat(dir); info.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v, want 0700", info.Mode().Perm())
	}
	loaded, err := LoadKeySet(dir)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := LoadKeySet(dir)
	a, b := loaded.Entries(), ks.Entries()
	for i := range b {
		if !bytes.Equal(a[i].Key.PrivateKey, b[i].Key.PrivateKey) || a[i].Published != b[i].Published ||
			!a[i].RetireAt.Equal(b[i].RetireAt) || a[i].File != again.Entries()[i].File {
			t.Fatalf("entry %d differs after load", i)
		}
	}
	l1, _ := ks.ConfigList()
	l2, _ := loaded.ConfigList()
	if !bytes.Equal(l1, l2) {
		t.Fatal("published list differs after load")
	}

	// Expire and save again: the retired key's file goes away.
	loaded.Expire(t0.Add(time.Hour))
	if err := SaveKeySet(dir, loaded); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, b[1].File)); !os.IsNotExist(err) {
		t.Fatalf("file of expired key %d still there: %v", old.Config.ConfigID, err)
	}
	if final, err := LoadKeySet(dir); err != nil || final.Len() != 1 {
		t.Fatalf("after expiry: %v", err)
	}
}

func TestLoadKeySetRejects(t *testing.T) {
	var ks KeySet
	_, _ = ks.Rotate(KeyOptions{}, time.Hour, t0)
	edit := func(t *testing.T, f func(dir string, m map[string]any)) error {
		dir := t.TempDir()
		if err := SaveKeySet(dir, &ks); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(filepath.Join(dir, KeySetManifest))
		var m map[string]any
		json.Unmarshal(b, &m)
		f(dir, m)
		b, _ = json.Marshal(m)
		os.WriteFile(filepath.Join(dir, KeySetManifest), b, 0o644)
		_, err := LoadKeySet(dir)
		return err
	}
	key0 := func(m map[string]any) map[string]any { return m["keys"].([]any)[0].(map[string]any) }
	cases := map[string]func(dir string, m map[string]any){
		"path escape": func(_ string, m map[string]any) { key0(m)["file"] = "../x.pem" },
		"config id mismatch": func(_ string, m map[string]any) {
			key0(m)["config_id"] = float64(int(key0(m)["config_id"].(float64)+1) % 256)
		},
		"unknown field": func(_ string, m map[string]any) { m["extra"] = 1 },
		"bad version":   func(_ string, m map[string]any) { m["version"] = 2 },
		"missing file":  func(dir string, m map[string]any) { os.Remove(filepath.Join(dir, key0(m)["file"].(string))) },
		"config-only PEM": func(dir string, m map[string]any) {
			name := filepath.Join(dir, key0(m)["file"].(string))
			b, _ := os.ReadFile(name)
			os.WriteFile(name, b[bytes.Index(b, []byte("-----BEGIN ECHCONFIG")):], 0o600)
		},
	}
	for name, f := range cases {
		t.Run(name, func(t *testing.T) {
			if err := edit(t, f); err == nil {
				t.Fatal("LoadKeySet accepted it")
			}
		})
	}
	if _, err := LoadKeySet(t.TempDir()); err == nil {
		t.Fatal("empty directory accepted")
	}
}

func TestKeySetConcurrentUse(t *testing.T) {
	var ks KeySet
	ks.Rotate(KeyOptions{}, time.Hour, t0)
	done := make(chan bool)
	for g := 0; g < 4; g++ {
		go func() {
			defer func() { done <- true }()
			for i := 0; i < 20; i++ {
				if _, err := ks.ConfigList(); err != nil {
					t.Error(err)
				}
				ks.Lookup(uint8(i))
				ks.TLSKeysSupported()
			}
		}()
	}
	for i := 0; i < 10; i++ {
		ks.Rotate(KeyOptions{}, time.Hour, t0)
		ks.Expire(t0.Add(time.Hour))
	}
	for g := 0; g < 4; g++ {
		<-done
	}
	if ks.Len() != 1 {
		t.Fatalf("%d keys, want 1", ks.Len())
	}
}

// TestKeySetGraceByClock checks that a retired key past its grace is
// neither accepted nor offered, by the set's clock alone, before anyone
// calls Expire.
func TestKeySetGraceByClock(t *testing.T) {
	clock := &fixedClock{t: t0}
	var ks KeySet
	ks.SetClock(clock.now)
	old, err := ks.Rotate(KeyOptions{}, time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	cur, err := ks.Rotate(KeyOptions{KEM: KEMX448HKDFSHA512}, time.Hour, t0) // x448: skipped by TLSKeysSupported
	if err != nil {
		t.Fatal(err)
	}
	oldID := old.Config.ConfigID
	tlsHas := func(keys []tls.EncryptedClientHelloKey, k *Key) bool {
		return slices.ContainsFunc(keys, func(tk tls.EncryptedClientHelloKey) bool { return bytes.Equal(tk.Config, k.Config.Raw) })
	}
	check := func(at time.Time, wantOld bool) {
		t.Helper()
		clock.set(at)
		if got := len(ks.Lookup(oldID)) == 1; got != wantOld {
			t.Errorf("at %v: Lookup(old) found %v, want %v", at, got, wantOld)
		}
		if got := slices.Contains(ks.Keys(), old); got != wantOld {
			t.Errorf("at %v: Keys has old %v, want %v", at, got, wantOld)
		}
		if got := len(ks.Keys()); got != map[bool]int{true: 2, false: 1}[wantOld] {
			t.Errorf("at %v: Keys has %d keys", at, got)
		}
		sup, skipped := ks.TLSKeysSupported()
		if got := tlsHas(sup, old); got != wantOld || len(skipped) != 1 || skipped[0] != cur {
			t.Errorf("at %v: TLSKeysSupported has old %v (want %v), skipped %v", at, got, wantOld, skipped)
		}
		list, _ := ks.ConfigList()
		retry, _ := ks.RetryConfigList()
		want, _ := MarshalConfigList(cur.Config.Raw)
		if !bytes.Equal(list, want) || !bytes.Equal(retry, want) {
			t.Errorf("at %v: published or retry list is not just the current key", at)
		}
	}
	check(t0.Add(time.Hour-time.Nanosecond), true)
	check(t0.Add(time.Hour), false) // RetireAt is not after now: past grace
	check(t0.Add(48*time.Hour), false)
	if ks.Len() != 2 {
		t.Fatalf("the clock alone dropped an entry: %d left", ks.Len())
	}

	// TLSKeys of a crypto/tls-only set leaves the expired key out too.
	var ts KeySet
	ts.SetClock(clock.now)
	clock.set(t0)
	a, _ := ts.Rotate(KeyOptions{}, time.Minute, t0)
	b, _ := ts.Rotate(KeyOptions{}, time.Minute, t0)
	if keys, err := ts.TLSKeys(); err != nil || len(keys) != 2 {
		t.Fatalf("within grace: %d keys, %v", len(keys), err)
	}
	clock.set(t0.Add(time.Minute))
	keys, err := ts.TLSKeys()
	if err != nil || len(keys) != 1 || !tlsHas(keys, b) || tlsHas(keys, a) {
		t.Fatalf("past grace TLSKeys = %d keys, %v", len(keys), err)
	}
	if !ts.Now().Equal(t0.Add(time.Minute)) {
		t.Errorf("Now() = %v, not the injected clock", ts.Now())
	}
	ts.SetClock(nil)
	if d := time.Since(ts.Now()); d < 0 || d > time.Minute {
		t.Errorf("SetClock(nil) does not restore time.Now: %v", ts.Now())
	}
}

// TestSaveKeySetWhileServing saves a set while handshakes read its keys'
// configs (go test -race): SaveKeySet used to re-encode each live key's
// Config.Raw in place, a data race with every TLSKeys of a server.
func TestSaveKeySetWhileServing(t *testing.T) {
	var ks KeySet
	if _, err := ks.Rotate(KeyOptions{}, time.Hour, time.Now()); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := ks.TLSKeys(); err != nil {
					t.Error(err)
					return
				}
				ks.ConfigList()
			}
		})
	}
	for range 20 {
		if err := SaveKeySet(dir, &ks); err != nil {
			t.Error(err)
			break
		}
	}
	close(stop)
	wg.Wait()
}

// TestKeySetAllKeepsPastGrace: All still returns a retired key past its
// grace (until Expire), for opening old captures, while Keys does not.
func TestKeySetAllKeepsPastGrace(t *testing.T) {
	clock := &fixedClock{t: t0}
	var ks KeySet
	ks.SetClock(clock.now)
	old, _ := ks.Rotate(KeyOptions{}, time.Hour, t0)
	cur, _ := ks.Rotate(KeyOptions{}, time.Hour, t0)
	clock.set(t0.Add(2 * time.Hour))
	if all := ks.All(); len(all) != 2 || all[0] != cur || all[1] != old {
		t.Fatalf("All = %v, want the current and the past-grace key", all)
	}
	if got := ks.All().Lookup(old.Config.ConfigID); len(got) != 1 {
		t.Fatal("All().Lookup misses the past-grace key")
	}
	if len(ks.Keys()) != 1 {
		t.Fatal("Keys returns the past-grace key")
	}
	ks.Expire(clock.now())
	if len(ks.All()) != 1 {
		t.Fatal("All returns an expired key")
	}
}
