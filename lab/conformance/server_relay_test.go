package conformance

import (
	"bytes"
	"errors"
	"net"
	"testing"

	"github.com/echlab/echlab/ech"
)

// serverHelloMsg is a minimal ServerHello message with the given random.
func serverHelloMsg(random [32]byte) []byte {
	body := append([]byte{3, 3}, random[:]...)
	body = append(body, 0, 0x13, 0x01, 0, 0, 0) // empty session id, suite, compression, no extensions
	return append([]byte{typeServerHello, 0, 0, byte(len(body))}, body...)
}

// record frames b as one TLS record of type typ.
func record(typ byte, b []byte) []byte {
	return append([]byte{typ, 3, 3, byte(len(b) >> 8), byte(len(b))}, b...)
}

// TestFlipConfirmationAcrossRecords: the flipped bit is the last one of
// the random however the ServerHello is fragmented, with a leading
// change_cipher_spec record skipped.
func TestFlipConfirmationAcrossRecords(t *testing.T) {
	var random [32]byte
	for i := range random {
		random[i] = byte(i)
	}
	msg := serverHelloMsg(random)
	for _, split := range []int{1, 10, randomOffset + 31, randomOffset + 32, len(msg)} {
		records := record(20, []byte{1})
		records = append(records, record(22, msg[:split])...)
		if split < len(msg) {
			records = append(records, record(22, msg[split:])...)
		}
		out, goOn, err := flipConfirmation(records, msg)
		if err != nil || !goOn {
			t.Fatalf("split %d: %v", split, err)
		}
		got, _, err := ech.HandshakeFromRecords(out)
		if err != nil {
			t.Fatalf("split %d: %v", split, err)
		}
		want := append([]byte(nil), msg...)
		want[randomOffset+31] ^= 1
		if !bytes.Equal(got, want) || len(out) != len(records) {
			t.Fatalf("split %d: message %x, want %x", split, got, want)
		}
	}
}

// TestEditsRefuseOtherMessages: the ServerHello edits refuse a
// HelloRetryRequest or another message, and the HRR edit a ServerHello.
func TestEditsRefuseOtherMessages(t *testing.T) {
	hrr := serverHelloMsg(hrrRandom)
	sh := serverHelloMsg([32]byte{1})
	other := append([]byte{11}, sh[1:]...) // a Certificate type byte
	for name, c := range map[string]struct {
		edit firstFlightEdit
		msg  []byte
	}{
		"flip HRR":       {flipConfirmation, hrr},
		"flip other":     {flipConfirmation, other},
		"close HRR":      {closeAfterServerHello, hrr},
		"strip SH":       {stripECHFromHRR, sh},
		"strip no ECH":   {stripECHFromHRR, hrr},
		"flip truncated": {flipConfirmation, sh[:20]},
	} {
		if _, _, err := c.edit(record(22, c.msg), c.msg); !errors.Is(err, ErrFirstFlight) {
			t.Errorf("%s: error %v, want ErrFirstFlight", name, err)
		}
	}
}

// TestStartServerErrors: an unknown variant and an incomplete Env are
// errors, not panics.
func TestStartServerErrors(t *testing.T) {
	if _, _, err := StartServer("no-such-variant", newTestEnv(t)); !errors.Is(err, ErrVariant) {
		t.Fatalf("unknown variant: %v", err)
	}
	if _, _, err := StartServer(ServerGood, &Env{}); err == nil {
		t.Fatal("empty Env: no error")
	}
}

// TestStopClosesEveryVariant: after stop, nothing listens at the address.
func TestStopClosesEveryVariant(t *testing.T) {
	env := newTestEnv(t)
	for _, v := range Variants() {
		addr, stop, err := StartServer(v, env)
		if err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		if err := stop(); err != nil {
			t.Fatalf("%s: stop: %v", v, err)
		}
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			t.Fatalf("%s: still listening after stop", v)
		}
	}
}

// hrrMsg is a HelloRetryRequest carrying the extensions exts (encoded).
func hrrMsg(exts []byte) []byte {
	body := append([]byte{3, 3}, hrrRandom[:]...)
	body = append(body, 0, 0x13, 0x01, 0, byte(len(exts)>>8), byte(len(exts)))
	body = append(body, exts...)
	return append([]byte{typeServerHello, 0, 0, byte(len(body))}, body...)
}

// TestFlipHRRConfirmationBytes: the edit flips the last bit of the ECH
// extension's 8 bytes, and only that bit, however the HRR is split into
// records; a HelloRetryRequest without the extension, with one of another
// length, or a ServerHello is refused.
func TestFlipHRRConfirmationBytes(t *testing.T) {
	exts := []byte{0x00, 0x2b, 0x00, 0x02, 0x03, 0x04, // supported_versions
		0xfe, 0x0d, 0x00, 0x08, 1, 2, 3, 4, 5, 6, 7, 8, // encrypted_client_hello
		0x00, 0x33, 0x00, 0x02, 0x00, 0x17} // key_share: secp256r1
	msg := hrrMsg(exts)
	for _, split := range []int{1, len(msg) - 10, len(msg) - 9, len(msg) - 8, len(msg)} {
		records := record(20, []byte{1})
		records = append(records, record(22, msg[:split])...)
		if split < len(msg) {
			records = append(records, record(22, msg[split:])...)
		}
		out, goOn, err := flipHRRConfirmation(records, msg)
		if err != nil || !goOn {
			t.Fatalf("split %d: %v", split, err)
		}
		got, _, err := ech.HandshakeFromRecords(out)
		if err != nil {
			t.Fatalf("split %d: %v", split, err)
		}
		want := append([]byte(nil), msg...)
		want[len(msg)-6-1] ^= 1 // the ECH data's last byte sits before the 6-byte key_share
		if !bytes.Equal(got, want) || len(out) != len(records) {
			t.Fatalf("split %d: message %x, want %x", split, got, want)
		}
	}
	long := hrrMsg([]byte{0xfe, 0x0d, 0x00, 0x09, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	for name, m := range map[string][]byte{
		"no ECH":        hrrMsg(exts[:6]),
		"9 bytes":       long,
		"ServerHello":   serverHelloMsg([32]byte{1}),
		"truncated":     msg[:len(msg)-3],
		"header only":   msg[:4],
		"extension cut": hrrMsg(exts[:12]),
	} {
		if _, _, err := flipHRRConfirmation(record(22, m), m); !errors.Is(err, ErrFirstFlight) {
			t.Errorf("%s: error %v, want ErrFirstFlight", name, err)
		}
	}
}
