package server

import (
	"crypto/tls"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/echlab/echlab/ech"
)

// fakeClock is a settable clock for grace periods.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestRotationStaleClientRecoversWithRetryConfigs(t *testing.T) {
	ks := &ech.KeySet{}
	first := newKey(t, 3)
	ks.Add(first, true)
	oldList := configList(t, first)
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	ks.SetClock(clock.Now) // the Rotator reads the set's clock
	dir := t.TempDir()
	rot, err := StartRotator(RotatorConfig{Keys: ks, Dir: dir, Grace: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer rot.Close()
	logBuf := &syncBuffer{}
	s := startServer(t, Config{Keys: ks, Log: logBuf})

	get := func(list []byte) (ConnInfo, error) {
		c := httpClient(s.Addr(), clientTLS(t, "secret.lab.test", list))
		resp, err := c.Get("https://secret.lab.test/api/conn")
		if err != nil {
			return ConnInfo{}, err
		}
		resp.Body.Close()
		_, in := getJSON(t, c, "secret.lab.test")
		return in, nil
	}

	newKey, err := rot.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	if newKey.Config.ConfigID == first.Config.ConfigID {
		t.Fatal("rotation reused the config id")
	}
	saved, err := ech.LoadKeySet(dir)
	if err != nil {
		t.Fatal(err)
	}
	if pub, _ := saved.ConfigList(); string(pub) != string(configList(t, newKey)) {
		t.Errorf("saved key set publishes %x, want the new key's config", pub)
	}

	// Within the grace period the old config still works, without a restart.
	if in, err := get(oldList); err != nil || in.ECH != ECHAccepted || *in.ConfigID != first.Config.ConfigID {
		t.Fatalf("old config during grace: %+v, %v", in, err)
	}
	// After it, the old config is rejected with the new one as retry
	// config: by the clock alone, before Expire has dropped the key, and
	// after Expire as well.
	clock.Add(2 * time.Hour)
	var rej *tls.ECHRejectionError
	for _, when := range []string{"past grace", "after Expire"} {
		if when == "after Expire" {
			if n, err := rot.Expire(); n != 1 || err != nil {
				t.Fatalf("Expire = %d, %v", n, err)
			}
		}
		_, err = get(oldList)
		if !errors.As(err, &rej) {
			t.Fatalf("stale config %s: err = %v, want ECHRejectionError", when, err)
		}
		if string(rej.RetryConfigList) != string(configList(t, newKey)) {
			t.Fatalf("%s: retry configs %x, want %x", when, rej.RetryConfigList, configList(t, newKey))
		}
	}
	in, err := get(rej.RetryConfigList)
	if err != nil || in.ECH != ECHAccepted || *in.ConfigID != newKey.Config.ConfigID {
		t.Fatalf("with retry configs: %+v, %v", in, err)
	}
	// The stale attempt is logged as rejected (a retired id), not grease.
	var sawStale bool
	for _, r := range logBuf.records(t) {
		if r.ConfigID != nil && *r.ConfigID == first.Config.ConfigID && r.ECH == ECHRejected && r.RetryConfigs {
			sawStale = true
		}
	}
	if !sawStale {
		t.Errorf("no rejected record for the stale config id in %+v", logBuf.records(t))
	}
}

func TestRotatorSchedule(t *testing.T) {
	ks := &ech.KeySet{}
	first := newKey(t, 1)
	ks.Add(first, true)
	var mu sync.Mutex
	var rotated []*ech.Key
	got := make(chan struct{}, 1)
	rot, err := StartRotator(RotatorConfig{Keys: ks, Every: 20 * time.Millisecond,
		OnRotate: func(k *ech.Key, err error) {
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			rotated = append(rotated, k)
			mu.Unlock()
			select {
			case got <- struct{}{}:
			default:
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("no scheduled rotation")
	}
	rot.Close()
	mu.Lock()
	last := rotated[len(rotated)-1]
	mu.Unlock()
	newest := ks.Entries()[0]
	if newest.Key != last || !newest.Published {
		t.Errorf("newest entry %+v is not the last rotated key", newest)
	}
	if list, _ := ks.ConfigList(); string(list) != string(configList(t, last)) {
		t.Errorf("published list is not just the newest key")
	}
	if _, err := StartRotator(RotatorConfig{}); !errors.Is(err, ErrConfig) {
		t.Errorf("nil key set: err = %v", err)
	}
}

// TestRotatorExpiresAtGraceEnd checks that a replaced key is dropped when
// its grace ends, by the expiry timer, with no further rotation.
func TestRotatorExpiresAtGraceEnd(t *testing.T) {
	ks := &ech.KeySet{}
	first := newKey(t, 4)
	ks.Add(first, true)
	expired := make(chan int, 4)
	rot, err := StartRotator(RotatorConfig{Keys: ks, Grace: 20 * time.Millisecond,
		OnRotate: func(*ech.Key, error) { t.Error("no scheduled rotation was asked for") },
		OnExpire: func(n int, err error) {
			if err != nil {
				t.Error(err)
			}
			expired <- n
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer rot.Close()
	if _, err := rot.Rotate(); err != nil {
		t.Fatal(err)
	}
	if len(ks.Lookup(first.Config.ConfigID)) == 0 {
		t.Fatal("the replaced key was dropped at once, with no grace")
	}
	select {
	case n := <-expired:
		if n != 1 {
			t.Errorf("expired %d keys, want 1", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the replaced key never expired without another rotation")
	}
	if ks.Len() != 1 || len(ks.Lookup(first.Config.ConfigID)) != 0 {
		t.Errorf("after grace the set holds %d keys, the old one: %v", ks.Len(), ks.Lookup(first.Config.ConfigID))
	}
}

// TestRotatorGraceShorterThanPeriod checks the order of events on a
// schedule whose grace is far shorter than its period: each replaced key
// expires before the next rotation.
func TestRotatorGraceShorterThanPeriod(t *testing.T) {
	ks := &ech.KeySet{}
	ks.Add(newKey(t, 5), true)
	events := make(chan string, 16)
	rot, err := StartRotator(RotatorConfig{Keys: ks, Every: 400 * time.Millisecond, Grace: 5 * time.Millisecond,
		OnRotate: func(_ *ech.Key, err error) {
			if err != nil {
				t.Error(err)
			}
			events <- "rotate"
		},
		OnExpire: func(n int, err error) {
			if err != nil {
				t.Error(err)
			}
			events <- "expire"
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer rot.Close()
	var got []string
	for rotations := 0; rotations < 2; {
		select {
		case e := <-events:
			got = append(got, e)
			if e == "rotate" {
				rotations++
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("events so far %v", got)
		}
	}
	if want := []string{"rotate", "expire", "rotate"}; !slices.Equal(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
}

func TestNextRetire(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, ok := nextRetire([]ech.KeyEntry{{Published: true}, {Published: true, RetireAt: t0}}); ok {
		t.Error("published keys or keys without RetireAt count as expiring")
	}
	got, ok := nextRetire([]ech.KeyEntry{{RetireAt: t0.Add(time.Hour)}, {RetireAt: t0}, {Published: true}})
	if !ok || !got.Equal(t0) {
		t.Errorf("nextRetire = %v, %v; want %v", got, ok, t0)
	}
}

// TestRotatorKeepsTheSetsShape checks that a Rotator with zero KeyOptions
// (what echlab server --rotate-every uses) replaces each published key with
// one like it: an X25519+X-Wing set with two suites, a public name and a
// maximum name length stays that, saved to disk, and both new keys work in
// a real handshake. A KeyOptions field overrides its part.
func TestRotatorKeepsTheSetsShape(t *testing.T) {
	suites := []ech.CipherSuite{{KDF: 1, AEAD: 1}, {KDF: 1, AEAD: 3}}
	ks := &ech.KeySet{}
	for _, kem := range []uint16{ech.KEMXWing, ech.KEMX25519HKDFSHA256} { // Add puts the last first
		k, err := ech.GenerateKey(ech.KeyOptions{ConfigID: uint8(kem), KEM: kem, CipherSuites: suites,
			PublicName: "front.example", MaximumNameLength: 40})
		if err != nil {
			t.Fatal(err)
		}
		ks.Add(k, true)
	}
	dir := t.TempDir()
	rot, err := StartRotator(RotatorConfig{Keys: ks, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer rot.Close()
	keys, err := rot.RotateKeys()
	if err != nil {
		t.Fatal(err)
	}
	saved, err := ech.LoadKeySet(dir)
	if err != nil {
		t.Fatal(err)
	}
	pub := saved.PublishedOptions()
	if len(keys) != 2 || len(pub) != 2 {
		t.Fatalf("rotated to %d keys, %d published on disk; want 2 and 2", len(keys), len(pub))
	}
	for i, want := range []uint16{ech.KEMX25519HKDFSHA256, ech.KEMXWing} {
		c := keys[i].Config
		if c.KEM != want || !slices.Equal(c.CipherSuites, suites) || c.PublicName != "front.example" || c.MaximumNameLength != 40 {
			t.Errorf("new key %d: KEM %#x suites %v name %q max %d", i, c.KEM, c.CipherSuites, c.PublicName, c.MaximumNameLength)
		}
		if pub[i].KEM != want {
			t.Errorf("saved published key %d has KEM %#x, want %#x", i, pub[i].KEM, want)
		}
	}
	s := startServer(t, Config{Keys: ks, PublicName: "front.example"})
	for _, k := range keys {
		c := httpClient(s.Addr(), clientTLS(t, "secret.lab.test", configList(t, k)))
		if _, in := getJSON(t, c, "secret.lab.test"); in.ECH != ECHAccepted || *in.ConfigID != k.Config.ConfigID {
			t.Errorf("new %s key: %+v", ech.KEMName(k.Config.KEM), in)
		}
	}

	// An explicit KEM gives one key of it; an explicit public name replaces the set's.
	rot2, err := StartRotator(RotatorConfig{Keys: ks, KeyOptions: ech.KeyOptions{KEM: ech.KEMP256HKDFSHA256, PublicName: "other.example"}})
	if err != nil {
		t.Fatal(err)
	}
	defer rot2.Close()
	keys, err = rot2.RotateKeys()
	if err != nil {
		t.Fatal(err)
	}
	if c := keys[0].Config; len(keys) != 1 || c.KEM != ech.KEMP256HKDFSHA256 || c.PublicName != "other.example" ||
		!slices.Equal(c.CipherSuites, suites) || c.MaximumNameLength != 40 {
		t.Errorf("override: %d keys, %+v", len(keys), c)
	}
}
