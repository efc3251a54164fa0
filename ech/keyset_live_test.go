package ech

import (
	"bytes"
	"sync"
	"testing"
	"time"
)

// TestKeySetReplaceFollowsDirectory rotates a saved set the way keygen
// does, loads it, and replaces the live set with it.
func TestKeySetReplaceFollowsDirectory(t *testing.T) {
	dir := t.TempDir()
	live := &KeySet{}
	old, _ := GenerateKey(KeyOptions{ConfigID: 1})
	live.Add(old, true)
	if err := SaveKeySet(dir, live); err != nil {
		t.Fatal(err)
	}
	outside, err := LoadKeySet(dir)
	if err != nil {
		t.Fatal(err)
	}
	outside.Retire(time.Hour, t0)
	fresh, _ := GenerateKey(KeyOptions{ConfigID: 2})
	outside.Add(fresh, true)
	if err := SaveKeySet(dir, outside); err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadKeySet(dir)
	if err != nil {
		t.Fatal(err)
	}
	if d := live.Replace(loaded); d != (KeySetDiff{Added: 1, Changed: 1}) {
		t.Fatalf("diff %+v, want 1 added, 1 changed", d)
	}
	e := live.Entries()
	if len(e) != 2 || e[1].Key != old || e[1].Published || !e[1].RetireAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("entries %+v: the old key should stay the same *Key, retired at t0+1h", e)
	}
	if !bytes.Equal(e[0].Key.PrivateKey, fresh.PrivateKey) || !e[0].Published {
		t.Fatalf("newest entry is not the outside key")
	}
	list, _ := live.ConfigList()
	want, _ := MarshalConfigList(fresh.Config.Raw)
	if !bytes.Equal(list, want) {
		t.Error("the live set does not publish the outside key alone")
	}
	// Loading the same directory again changes nothing.
	again, _ := LoadKeySet(dir)
	if d := live.Replace(again); !d.Empty() {
		t.Errorf("replacing with the same contents: %+v", d)
	}
	if live.Entries()[1].Key != old {
		t.Error("an unchanged reload swapped the old *Key")
	}
	// A set without the old key removes it.
	only := &KeySet{}
	only.Add(fresh, true)
	if d := live.Replace(only); d != (KeySetDiff{Removed: 1}) {
		t.Errorf("dropping the old key: %+v", d)
	}
	if len(live.Lookup(1)) != 0 || live.Len() != 1 {
		t.Error("the removed key is still in the set")
	}
	if d := live.Replace(live); !d.Empty() {
		t.Errorf("self replace: %+v", d)
	}
}

// TestKeySetReplaceConcurrent replaces a set while handshakes read it
// (go test -race).
func TestKeySetReplaceConcurrent(t *testing.T) {
	a, _ := GenerateKey(KeyOptions{ConfigID: 1})
	b, _ := GenerateKey(KeyOptions{ConfigID: 2})
	sa, sb := &KeySet{}, &KeySet{}
	sa.Add(a, true)
	sb.Add(a, false)
	sb.Add(b, true) // newest: sb is b (published), a (accepted)
	live := &KeySet{}
	live.Replace(sa)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				keys, err := live.TLSKeys()
				if err != nil || len(keys) == 0 || !keys[0].SendAsRetry {
					t.Errorf("TLSKeys mid-replace: %d keys, %v", len(keys), err)
					return
				}
				if len(live.Lookup(1)) != 1 {
					t.Error("key 1, in both sets, went missing mid-replace")
					return
				}
			}
		}()
	}
	for i := range 200 {
		if i%2 == 0 {
			live.Replace(sb)
		} else {
			live.Replace(sa)
		}
	}
	close(stop)
	wg.Wait()
}
