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
	dir := t.TempDir()
	rot, err := StartRotator(RotatorConfig{Keys: ks, Dir: dir, Grace: time.Hour, Now: clock.Now})
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
	// After it, the old config is rejected with the new one as retry config.
	clock.Add(2 * time.Hour)
	if n, err := rot.Expire(); n != 1 || err != nil {
		t.Fatalf("Expire = %d, %v", n, err)
	}
	_, err = get(oldList)
	var rej *tls.ECHRejectionError
	if !errors.As(err, &rej) {
		t.Fatalf("stale config: err = %v, want ECHRejectionError", err)
	}
	if string(rej.RetryConfigList) != string(configList(t, newKey)) {
		t.Fatalf("retry configs %x, want %x", rej.RetryConfigList, configList(t, newKey))
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
