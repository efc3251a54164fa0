package server

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/echlab/echlab/ech"
)

// echDial makes one TLS handshake for secret.lab.test offering list and
// returns whether ECH was accepted, or the retry configs of a rejection.
func echDial(t *testing.T, addr string, list []byte) (accepted bool, retry []byte) {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, clientTLS(t, "secret.lab.test", list))
	if err == nil {
		st := c.ConnectionState()
		c.Close()
		return st.ECHAccepted, nil
	}
	var rej *tls.ECHRejectionError
	if !errors.As(err, &rej) {
		t.Fatalf("handshake with %x…: %v", list[:8], err)
	}
	return false, rej.RetryConfigList
}

func wantAccepted(t *testing.T, addr, what string, list []byte) {
	t.Helper()
	if ok, retry := echDial(t, addr, list); !ok {
		t.Fatalf("%s: rejected (retry configs %x), want accepted", what, retry)
	}
}

func wantRejected(t *testing.T, addr, what string, list, wantRetry []byte) {
	t.Helper()
	ok, retry := echDial(t, addr, list)
	if ok {
		t.Fatalf("%s: accepted, want rejected", what)
	}
	if !bytes.Equal(retry, wantRetry) {
		t.Fatalf("%s: retry configs %x, want the current list %x", what, retry, wantRetry)
	}
}

// newKeyDir saves a one-key set in a fresh directory and returns it with
// the set's list.
func newKeyDir(t *testing.T) (string, []byte) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "keys")
	ks := &ech.KeySet{}
	ks.Add(newKey(t, 7), true)
	if err := ech.SaveKeySet(dir, ks); err != nil {
		t.Fatal(err)
	}
	list, _ := ks.ConfigList()
	return dir, list
}

// rotateOutside does what echlab keygen --keys dir --rotate --grace grace
// does, as another process would: load, expire, retire, add a new
// published key, save. It returns the new published list and when the
// replaced key's grace ends.
func rotateOutside(t *testing.T, dir string, grace time.Duration) ([]byte, time.Time) {
	t.Helper()
	ks, err := ech.LoadKeySet(dir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ks.Expire(now)
	ks.Retire(grace, now)
	id, err := ks.FreeConfigID(nil)
	if err != nil {
		t.Fatal(err)
	}
	ks.Add(newKey(t, id), true)
	if err := ech.SaveKeySet(dir, ks); err != nil {
		t.Fatal(err)
	}
	list, _ := ks.ConfigList()
	return list, now.Add(grace)
}

// liveKeys loads dir as a server command does and follows it with a
// KeyWatcher; reloads that changed the set arrive on the channel.
func liveKeys(t *testing.T, dir string, rot *Rotator) (*ech.KeySet, *KeyWatcher, chan ech.KeySetDiff, chan error) {
	t.Helper()
	ks, err := ech.LoadKeySet(dir)
	if err != nil {
		t.Fatal(err)
	}
	diffs, errs := make(chan ech.KeySetDiff, 100), make(chan error, 100)
	w, err := WatchKeys(KeyWatchConfig{Keys: ks, Dir: dir, Interval: 5 * time.Millisecond, Rotator: rot,
		OnReload: func(d ech.KeySetDiff, err error) {
			if err != nil {
				errs <- err
				return
			}
			diffs <- d
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return ks, w, diffs, errs
}

// waitReload waits for a reload that added a key.
func waitReload(t *testing.T, diffs chan ech.KeySetDiff, errs chan error) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case d := <-diffs:
			if d.Added > 0 {
				return
			}
		case err := <-errs:
			t.Logf("reload caught the folder mid-write, retried: %v", err) // allowed; the next poll retries
		case <-deadline:
			t.Fatal("the watcher did not take over the rotation within 10 s")
		}
	}
}

// echFronts start a shared server or a split front (with a crypto/tls
// backend) on a live key set and return the address clients dial.
var echFronts = []struct {
	name  string
	start func(t *testing.T, ks *ech.KeySet) string
}{
	{"shared", func(t *testing.T, ks *ech.KeySet) string {
		return startServer(t, Config{Keys: UsableKeys(ks)}).Addr()
	}},
	{"split", func(t *testing.T, ks *ech.KeySet) string {
		backend := startServer(t, Config{Names: []string{"secret.lab.test"}, Mode: "split-backend"})
		sp, err := StartSplit(SplitConfig{Keys: ks, CA: testCA(t), Routes: Routes{"secret.lab.test": backend.Addr()}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sp.Close() })
		return sp.Addr()
	}},
}

// TestWatchKeysFollowsOutsideRotation rotates a running front's key
// folder from outside: the new config is accepted at once, the replaced
// one during its grace only, and after it the client is rejected with the
// new config, never the retired one, as retry config.
func TestWatchKeysFollowsOutsideRotation(t *testing.T) {
	for _, f := range echFronts {
		t.Run(f.name, func(t *testing.T) {
			dir, first := newKeyDir(t)
			ks, _, diffs, errs := liveKeys(t, dir, nil)
			addr := f.start(t, ks)
			wantAccepted(t, addr, "first config", first)

			const grace = 3 * time.Second
			second, retireAt := rotateOutside(t, dir, grace)
			waitReload(t, diffs, errs)
			wantAccepted(t, addr, "new config", second)
			wantAccepted(t, addr, "replaced config during its grace", first)
			if time.Now().After(retireAt) {
				t.Fatalf("the grace period of %v ended before the checks did; the machine is too slow for this test", grace)
			}
			time.Sleep(time.Until(retireAt) + 50*time.Millisecond)
			wantRejected(t, addr, "replaced config after its grace", first, second)
			wantAccepted(t, addr, "new config after the grace", second)

			third, _ := rotateOutside(t, dir, 0) // keygen --rotate --grace 0
			waitReload(t, diffs, errs)
			wantAccepted(t, addr, "config after --grace 0", third)
			wantRejected(t, addr, "config replaced with --grace 0", second, third)
		})
	}
}

// TestWatchKeysKeepsLastGoodSet breaks the folder: the watcher reports it,
// the server goes on with the last good set, and a repaired folder is
// taken at the next poll.
func TestWatchKeysKeepsLastGoodSet(t *testing.T) {
	dir, first := newKeyDir(t)
	ks, w, diffs, errs := liveKeys(t, dir, nil)
	addr := echFronts[0].start(t, ks)
	good, err := os.ReadFile(filepath.Join(dir, ech.KeySetManifest))
	if err != nil {
		t.Fatal(err)
	}
	for _, broken := range [][]byte{[]byte(`{"version": 1, "keys": [`), []byte(`{"version":1,"keys":[]}`)} {
		if err := os.WriteFile(filepath.Join(dir, ech.KeySetManifest), broken, 0o644); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-errs:
			if !errors.Is(err, ErrKeyReload) {
				t.Errorf("reported %v, want an error wrapping ErrKeyReload", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("manifest %q: no error reported", broken)
		}
		wantAccepted(t, addr, "last good config while the folder is broken", first)
		if _, err := w.Reload(); !errors.Is(err, ErrKeyReload) {
			t.Errorf("Reload of %q = %v, want ErrKeyReload", broken, err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, ech.KeySetManifest), good, 0o644); err != nil {
		t.Fatal(err)
	}
	second, _ := rotateOutside(t, dir, 0)
	waitReload(t, diffs, errs)
	wantAccepted(t, addr, "config of the repaired folder", second)
	wantRejected(t, addr, "config replaced with --grace 0", first, second)
}

// TestWatchKeysWithOwnRotator runs the server's own rotator on the folder
// the watcher follows: every save comes back to the watcher, which must
// change nothing (no flapping, no key lost) while clients use the newest
// config.
func TestWatchKeysWithOwnRotator(t *testing.T) {
	dir, _ := newKeyDir(t)
	ks, err := ech.LoadKeySet(dir)
	if err != nil {
		t.Fatal(err)
	}
	rot, err := StartRotator(RotatorConfig{Keys: ks, Dir: dir, Grace: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer rot.Close()
	diffs, errs := make(chan ech.KeySetDiff, 100), make(chan error, 100)
	w, err := WatchKeys(KeyWatchConfig{Keys: ks, Dir: dir, Interval: time.Millisecond, Rotator: rot,
		OnReload: func(d ech.KeySetDiff, err error) {
			if err != nil {
				errs <- err
				return
			}
			diffs <- d
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	addr := startServer(t, Config{Keys: UsableKeys(ks)}).Addr()
	var made []*ech.Key
	for i := range 20 {
		k, err := rot.Rotate()
		if err != nil {
			t.Fatal(err)
		}
		made = append(made, k)
		list, _ := ks.ConfigList()
		wantAccepted(t, addr, "newest config", list)
		if e := ks.Entries(); len(e) != i+2 || e[0].Key != k || !e[0].Published {
			t.Fatalf("rotation %d: the live set has %d keys, newest %v; want %d, the rotator's", i, len(e), e[0].Key == k, i+2)
		}
	}
	if _, err := w.Reload(); err != nil { // the last save, read back
		t.Fatal(err)
	}
	for i, k := range made {
		if len(ks.Lookup(k.Config.ConfigID)) == 0 {
			t.Errorf("key %d of the rotator is gone", i)
		}
	}
	select {
	case d := <-diffs:
		t.Errorf("reloading the rotator's own saves changed the set: %+v", d)
	case err := <-errs:
		t.Errorf("reloading the rotator's own saves failed: %v", err)
	default:
	}
}

func TestWatchKeysConfig(t *testing.T) {
	for _, c := range []KeyWatchConfig{{Dir: "x"}, {Keys: &ech.KeySet{}}, {Keys: &ech.KeySet{}, Dir: "x", Interval: -1}} {
		if _, err := WatchKeys(c); !errors.Is(err, ErrConfig) {
			t.Errorf("WatchKeys(%+v) = %v, want ErrConfig", c, err)
		}
	}
}

// TestWatchKeysChecksOnEveryHandshake: with a poll interval far too long
// to matter, a config that another process has just written to the folder
// (and that a resolver watching it may already publish) is accepted on the
// very next handshake, by the shared server and the split front: the key
// set's read hook stats the manifest on every handshake. The replaced key
// then follows its grace by the clock alone.
func TestWatchKeysChecksOnEveryHandshake(t *testing.T) {
	for _, f := range echFronts {
		t.Run(f.name, func(t *testing.T) {
			dir, first := newKeyDir(t)
			ks, err := ech.LoadKeySet(dir)
			if err != nil {
				t.Fatal(err)
			}
			w, err := WatchKeys(KeyWatchConfig{Keys: ks, Dir: dir, Interval: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { w.Close() })
			addr := f.start(t, ks)
			wantAccepted(t, addr, "first config", first)
			for i := range 5 {
				next, _ := rotateOutside(t, dir, 0)
				wantAccepted(t, addr, fmt.Sprintf("rotation %d: the config just written", i), next)
				wantRejected(t, addr, fmt.Sprintf("rotation %d: the config replaced with grace 0", i), first, next)
				first = next
			}
		})
	}
}

// TestNoECHHandshakeReadsNoKeys: a TLS 1.3 handshake without ECH does not
// read the key set (crypto/tls asks for the keys while writing the
// EncryptedExtensions of every handshake; a watched set would stat its
// manifest each time), and the ECH handshake after it does, and is
// accepted.
func TestNoECHHandshakeReadsNoKeys(t *testing.T) {
	for _, f := range echFronts {
		t.Run(f.name, func(t *testing.T) {
			dir, list := newKeyDir(t)
			ks, err := ech.LoadKeySet(dir)
			if err != nil {
				t.Fatal(err)
			}
			addr := f.start(t, ks)
			var reads atomic.Int64
			ks.OnRead(func() { reads.Add(1) })
			for range 3 {
				d := &net.Dialer{Timeout: 5 * time.Second}
				c, err := tls.DialWithDialer(d, "tcp", addr, clientTLS(t, "secret.lab.test", nil))
				if err != nil {
					t.Fatal(err)
				}
				st := c.ConnectionState()
				c.Close()
				if st.Version != tls.VersionTLS13 || st.ECHAccepted {
					t.Fatalf("version %#x, ECH accepted %v: want TLS 1.3 without ECH", st.Version, st.ECHAccepted)
				}
			}
			if n := reads.Load(); n != 0 {
				t.Fatalf("%d key set reads for 3 handshakes without ECH, want none", n)
			}
			wantAccepted(t, addr, "ECH after them", list)
			if reads.Load() == 0 {
				t.Fatal("the ECH handshake read no keys")
			}
		})
	}
}

// TestOpenedECHKeyReads: a shared server that opens ECH itself reads its
// key set twice per accepted ECH handshake, so a watched folder is
// checked twice: once for the open's lookup by config id, once when
// crypto/tls asks for keys (its answer records the config ids the server
// holds, which tell a stale config from GREASE later).
func TestOpenedECHKeyReads(t *testing.T) {
	dir, list := newKeyDir(t)
	ks, err := ech.LoadKeySet(dir)
	if err != nil {
		t.Fatal(err)
	}
	addr := startServer(t, Config{Keys: UsableKeys(ks)}).Addr()
	var reads atomic.Int64
	ks.OnRead(func() { reads.Add(1) })
	wantAccepted(t, addr, "ECH", list)
	if n := reads.Load(); n != 2 {
		t.Fatalf("%d key set reads for one accepted ECH handshake, want 2", n)
	}
}

// TestKeyWatcherCheckIsCheapWhenUnchanged: Check on an unchanged folder
// reloads nothing (the set's keys stay the same pointers).
func TestKeyWatcherCheckIsCheapWhenUnchanged(t *testing.T) {
	dir, _ := newKeyDir(t)
	ks, err := ech.LoadKeySet(dir)
	if err != nil {
		t.Fatal(err)
	}
	reloads := 0
	w, err := WatchKeys(KeyWatchConfig{Keys: ks, Dir: dir, Interval: time.Hour,
		OnReload: func(ech.KeySetDiff, error) { reloads++ }})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	before := ks.All()
	for range 100 {
		w.Check()
	}
	if after := ks.All(); len(after) != 1 || after[0] != before[0] || reloads != 0 {
		t.Fatalf("unchanged folder: %d reloads, keys %v → %v", reloads, before, after)
	}
	rotateOutside(t, dir, time.Minute)
	ks.Keys() // the read hook
	if got := len(ks.Keys()); got != 2 || reloads != 1 {
		t.Fatalf("after a rotation: %d keys, %d reloads; want 2 keys after 1 reload", got, reloads)
	}
}

// TestKeyWatcherPollNeverPutsBackAnOlderSet: a poll that read the folder
// just before an outside rotation, and a handshake's Check that loaded the
// rotated folder meanwhile, must leave the rotated set live. Before
// reloads were serialised the poll's older set landed last, and Check
// (whose stat already matched the new manifest) did not reload again: the
// config the resolver published was rejected until the next poll (the
// soak's "rejected although it was current").
func TestKeyWatcherPollNeverPutsBackAnOlderSet(t *testing.T) {
	dir, _ := newKeyDir(t)
	ks, err := ech.LoadKeySet(dir)
	if err != nil {
		t.Fatal(err)
	}
	w, err := WatchKeys(KeyWatchConfig{Keys: ks, Dir: dir, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })

	loaded, release := make(chan struct{}), make(chan struct{})
	first := true
	loadKeySet = func(d string) (*ech.KeySet, error) {
		s, err := ech.LoadKeySet(d)
		if first {
			first = false
			close(loaded)
			<-release // the poll is descheduled between its load and its replace
		}
		return s, err
	}
	t.Cleanup(func() { loadKeySet = ech.LoadKeySet })

	pollDone := make(chan struct{})
	go func() {
		defer close(pollDone)
		w.Reload() //nolint:errcheck // the poll path
	}()
	<-loaded
	next, _ := rotateOutside(t, dir, 0)
	checkDone := make(chan struct{})
	go func() {
		defer close(checkDone)
		w.Check() // a handshake right after the rotation
	}()
	select {
	case <-checkDone: // the old code: Check finished while the poll still held its older set
	case <-time.After(300 * time.Millisecond): // the fixed code: Check waits for the poll
	}
	close(release)
	<-pollDone
	<-checkDone
	live, err := ks.ConfigList()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(live, next) {
		t.Fatalf("after the poll and the Check, the live list is %x…, want the rotated %x…", live[:12], next[:12])
	}
}
