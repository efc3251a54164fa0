package quicinitial

import (
	"bytes"
	"errors"
	"testing"
)

// helloMsg is a fake ClientHello message of n body bytes whose random is
// 32 bytes of r.
func helloMsg(n int, r byte) []byte {
	msg := append([]byte{1, byte(n >> 16), byte(n >> 8), byte(n), 3, 3}, bytes.Repeat([]byte{r}, 32)...)
	for len(msg) < 4+n {
		msg = append(msg, byte(len(msg)))
	}
	return msg
}

// crypto is a CRYPTO frame with 2-byte offset and length.
func crypto(off int, data []byte) []byte {
	return append([]byte{6, 0x40 | byte(off>>8), byte(off), 0x40 | byte(len(data)>>8), byte(len(data))}, data...)
}

// TestHelloRoundTrip protects a ClientHello in two Initial packets (v1 and
// v2), coalesced in one datagram in reverse order, and reads it back.
func TestHelloRoundTrip(t *testing.T) {
	for _, version := range []uint32{V1, V2} {
		dcid := unhex(t, "0001020304050607")
		msg := helloMsg(200, 0xab)
		p1 := protect(t, version, dcid, 1, crypto(100, msg[100:]))
		p2 := protect(t, version, dcid, 0, crypto(0, msg[:100]))
		var q Hello
		got, ok, err := q.Add(append(p1, p2...))
		if !ok || err != nil || !bytes.Equal(got, msg) || q.Version() != version {
			t.Errorf("version %#x: %x %v %v, version %#x", version, got, ok, err, q.Version())
		}
		if r := q.Random(); !bytes.Equal(r, bytes.Repeat([]byte{0xab}, 32)) {
			t.Errorf("version %#x: Random = %x", version, r)
		}
	}
}

// TestHelloRandomFirst: the random is known from the first 38 bytes, before
// the rest of the message; not from 37 bytes, nor from a message that is
// not a ClientHello.
func TestHelloRandomFirst(t *testing.T) {
	dcid := unhex(t, "1111111111111111")
	msg := helloMsg(1500, 0x5c)
	var q Hello
	if _, ok, err := q.Add(protect(t, V1, dcid, 0, crypto(0, msg[:37]))); ok || err != nil || q.Random() != nil {
		t.Fatalf("37 bytes: ok %v err %v random %x", ok, err, q.Random())
	}
	if _, ok, err := q.Add(protect(t, V1, dcid, 1, crypto(37, msg[37:600]))); ok || err != nil {
		t.Fatalf("600 bytes: ok %v err %v", ok, err)
	}
	r := q.Random()
	if !bytes.Equal(r, msg[6:38]) {
		t.Fatalf("Random = %x, want %x", r, msg[6:38])
	}
	r[0] ^= 1 // a copy: the Hello's bytes do not change
	if !bytes.Equal(q.Random(), msg[6:38]) {
		t.Error("Random returned the Hello's own bytes")
	}
	var other Hello
	notHello := append([]byte{2, 0, 0, 60}, make([]byte, 60)...)
	if _, _, err := other.Add(protect(t, V1, dcid, 0, crypto(0, notHello))); !errors.Is(err, ErrGaveUp) || other.Random() != nil {
		t.Errorf("a ServerHello: %v, random %x", err, other.Random())
	}
}

// TestHelloNewDCID: an Initial under a new DCID (a new connection, or the
// ClientHello sent again after a Retry) starts over with its own keys; the
// CRYPTO data under the old keys is dropped.
func TestHelloNewDCID(t *testing.T) {
	first, second := helloMsg(300, 1), helloMsg(300, 2)
	var q Hello
	q.Add(protect(t, V1, unhex(t, "0101010101010101"), 0, crypto(0, first[:150])))
	if !bytes.Equal(q.Random(), first[6:38]) {
		t.Fatalf("first random %x", q.Random())
	}
	msg, ok, err := q.Add(protect(t, V1, unhex(t, "0202020202020202"), 0, crypto(0, second)))
	if !ok || err != nil || !bytes.Equal(msg, second) || !bytes.Equal(q.Random(), second[6:38]) {
		t.Errorf("after the new DCID: %v %v random %x", ok, err, q.Random())
	}
}

// TestHelloLimits: giving up is final and keeps nothing.
func TestHelloLimits(t *testing.T) {
	dcid := unhex(t, "0001020304050607")
	var q Hello
	for range MaxHelloDatagrams {
		if _, _, err := q.Add([]byte{0x40, 1}); !errors.Is(err, ErrPacket) || errors.Is(err, ErrGaveUp) {
			t.Fatalf("a short-header datagram: %v", err)
		}
	}
	_, _, err := q.Add(protect(t, V1, dcid, 0, crypto(0, helloMsg(50, 1))))
	if !errors.Is(err, ErrGaveUp) {
		t.Fatalf("datagram %d: %v, want ErrGaveUp", MaxHelloDatagrams+1, err)
	}
	if _, ok, err2 := q.Add(protect(t, V1, dcid, 0, crypto(0, helloMsg(50, 1)))); ok || err2 != err || q.Random() != nil {
		t.Errorf("after giving up: %v %v %x", ok, err2, q.Random())
	}
	var big Hello
	if _, _, err := big.Add(protect(t, V1, dcid, 0, crypto(0, []byte{1, 1, 0, 0}))); !errors.Is(err, ErrGaveUp) {
		t.Errorf("a 64 KiB ClientHello: %v, want ErrGaveUp", err)
	}
}
