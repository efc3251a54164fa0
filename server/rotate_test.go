package server

import (
	"crypto/tls"
	"errors"
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
