package quicinitial

import (
	"encoding/hex"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestKeysRFC9001 checks the key derivation vector of RFC 9001
// Appendix A.1 and the header protection mask of Appendix A.2.
func TestKeysRFC9001(t *testing.T) {
	dcid := unhex(t, "8394c8f03e515708")
	cs, ss := Secrets(V1, dcid)
	check := func(name string, got []byte, want string) {
		t.Helper()
		if hex.EncodeToString(got) != want {
			t.Errorf("%s = %x, want %s", name, got, want)
		}
	}
	check("client_initial_secret", cs, "c00cf151ca5be075ed0ebfb5c80323c42d6b7db67881289af4008f1f6c357aea")
	check("server_initial_secret", ss, "3c199828fd139efd216c155ad844cc81fb82fa8d7446fa7d78be803acdda951b")
	ck, sk := NewKeys(V1, cs), NewKeys(V1, ss)
	check("client key", ck.Key, "1f369613dd76d5467730efcbe3b1a22d")
	check("client iv", ck.IV, "fa044b2f42a3fd3b46fb255c")
	check("client hp", ck.HPKey, "9f50449e04a0e810283a1e9933adedd2")
	check("server key", sk.Key, "cf3a5331653c364c88f0f379b6067e37")
	check("server iv", sk.IV, "0ac1493ca1905853b0bba03e")
	check("server hp", sk.HPKey, "c206b8d9b9f0f37644430b490eeaa314")
	var mask [16]byte
	ck.HP.Encrypt(mask[:], unhex(t, "d1b1c98dd7689fb8ec11d242b123dc9b"))
	check("A.2 header protection mask", mask[:5], "437b9aec36")
}

func TestDecodePacketNumber(t *testing.T) {
	cases := []struct {
		largest   int64
		truncated uint64
		bits      int
		want      int64
	}{
		{0xa82f30ea, 0x9b32, 16, 0xa82f9b32}, // RFC 9000 Appendix A.3
		{-1, 0, 16, 0},                       // the first packet
		{0xff, 0x01, 8, 0x101},               // wraps forward
		{0x101, 0xff, 8, 0xff},               // a late packet from before the wrap
	}
	for _, c := range cases {
		if got := DecodePacketNumber(c.largest, c.truncated, c.bits); got != c.want {
			t.Errorf("DecodePacketNumber(%#x, %#x, %d) = %#x, want %#x", c.largest, c.truncated, c.bits, got, c.want)
		}
	}
}

// TestOpenWrongKeys: an Initial protected under one DCID's keys does not
// open under another's, and a packet too short for the header protection
// sample is an error, not a panic.
func TestOpenWrongKeys(t *testing.T) {
	dcid := unhex(t, "0001020304050607")
	pkt := protect(t, V1, dcid, 0, []byte{6, 0, 1, 1})
	h, err := ParseHeader(pkt)
	if err != nil {
		t.Fatal(err)
	}
	cs, _ := Secrets(V1, unhex(t, "0001020304050608"))
	if _, _, err := NewKeys(V1, cs).Open(pkt, h, -1); err == nil {
		t.Error("opened under another DCID's keys")
	}
	cs, _ = Secrets(V1, dcid)
	if _, _, err := NewKeys(V1, cs).Open(pkt[:h.PNOffset+10], h, -1); err == nil {
		t.Error("opened a truncated packet")
	}
	if pn, plain, err := NewKeys(V1, cs).Open(pkt, h, -1); err != nil || pn != 0 || plain[0] != 6 {
		t.Errorf("Open = %d %x %v", pn, plain, err)
	}
}

// protect builds a client Initial packet under dcid (Protect).
func protect(t testing.TB, version uint32, dcid []byte, pn int, frames []byte) []byte {
	t.Helper()
	return Protect(version, dcid, dcid, pn, frames)
}
