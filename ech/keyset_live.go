package ech

import "bytes"

// KeySetDiff says what KeySet.Replace changed.
type KeySetDiff struct {
	Added   int // keys the set did not hold before
	Removed int // keys the set no longer holds
	Changed int // keys kept whose Published or RetireAt changed
}

// Empty reports whether the replacement changed nothing a handshake sees
// (the order of the keys aside).
func (d KeySetDiff) Empty() bool { return d == KeySetDiff{} }

// Replace makes ks hold the entries of from, newest first as in from, in
// place and at once: everything that reads ks (a server's
// GetEncryptedClientHelloKeys, a split relay's Open) sees the new set at
// its next handshake. A key that ks already holds (same ECHConfig and
// private key) keeps its *Key, and with it its decoded private key; its
// Published, RetireAt and File come from from. Keys that leave ks are
// dropped with their decoded secrets. from is not changed.
func (ks *KeySet) Replace(from *KeySet) KeySetDiff {
	if ks == from {
		return KeySetDiff{}
	}
	next := from.Entries()
	ks.mu.Lock()
	defer ks.mu.Unlock()
	var d KeySetDiff
	kept := make([]bool, len(ks.entries))
	for i := range next {
		j := ks.indexOf(next[i].Key)
		if j < 0 {
			d.Added++
			continue
		}
		kept[j] = true
		old := ks.entries[j]
		if old.Published != next[i].Published || !old.RetireAt.Equal(next[i].RetireAt) {
			d.Changed++
		}
		next[i].Key = old.Key
	}
	for _, k := range kept {
		if !k {
			d.Removed++
		}
	}
	ks.entries = next
	return d
}

// indexOf returns the index of the entry holding the same key as k, or
// -1. The caller holds mu.
func (ks *KeySet) indexOf(k *Key) int {
	for i, e := range ks.entries {
		if sameKey(e.Key, k) {
			return i
		}
	}
	return -1
}

// sameKey reports whether a and b are the same ECH key: equal encoded
// configs and equal private keys.
func sameKey(a, b *Key) bool {
	if a == b {
		return true
	}
	if !bytes.Equal(a.PrivateKey, b.PrivateKey) {
		return false
	}
	ra, errA := configRaw(&a.Config)
	rb, errB := configRaw(&b.Config)
	return errA == nil && errB == nil && bytes.Equal(ra, rb)
}
