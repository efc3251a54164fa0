package quicinitial

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzHello feeds arbitrary datagrams, split in two at any point, to a
// Hello: it must never panic, every error wraps ErrPacket or ErrGaveUp,
// a message it returns is a ClientHello within the cap, and the random is
// the message's. The seeds are Initials protected here, so that the fuzzer
// starts past the AEAD.
func FuzzHello(f *testing.F) {
	dcid := []byte{0, 1, 2, 3, 4, 5, 6, 7}
	msg := helloMsg(200, 7)
	two := append(protect(f, V1, dcid, 1, crypto(100, msg[100:])), protect(f, V1, dcid, 0, crypto(0, msg[:100]))...)
	f.Add(two, 0)
	f.Add(two, len(two)/2)
	f.Add(protect(f, V2, dcid, 0, append(crypto(0, msg), 0x02, 0, 0, 0, 0)), 3)
	f.Add([]byte{0xc0, 0, 0, 0, 1, 8, 0, 1, 2, 3, 4, 5, 6, 7, 0, 0, 0x41, 0}, 3)
	f.Fuzz(func(t *testing.T, b []byte, split int) {
		var q Hello
		cut := 0
		if len(b) > 0 {
			cut = (split%len(b) + len(b)) % len(b)
		}
		for _, d := range [][]byte{b[:cut], b[cut:], b} {
			in := bytes.Clone(d)
			got, ok, err := q.Add(d)
			if err != nil && !errors.Is(err, ErrPacket) && !errors.Is(err, ErrGaveUp) {
				t.Fatalf("error %v wraps neither ErrPacket nor ErrGaveUp", err)
			}
			if !bytes.Equal(in, d) {
				t.Fatal("Add modified its datagram")
			}
			if ok && (len(got) < 4 || got[0] != 1 || len(got) > MaxHelloBytes) {
				t.Fatalf("returned %x", got)
			}
			if r := q.Random(); ok && len(got) >= 38 && !bytes.Equal(r, got[6:38]) {
				t.Fatalf("Random %x, message %x", r, got[:38])
			}
		}
	})
}

// FuzzParseFrames: a decrypted payload never makes the frame parser panic,
// and the CRYPTO data it returns lies inside the payload.
func FuzzParseFrames(f *testing.F) {
	f.Add([]byte{0, 1, 0x06, 0x00, 0x02, 'h', 'i', 0x1c, 0, 0, 0})
	f.Add([]byte{0x03, 5, 0, 1, 0, 1, 0, 1, 2, 3, 0x06, 0x41, 0x2c, 0x01, 'x'})
	f.Fuzz(func(t *testing.T, b []byte) {
		chunks, _ := ParseFrames(b)
		total := 0
		for _, c := range chunks {
			total += len(c.Data)
		}
		if total > len(b) {
			t.Fatalf("%d CRYPTO bytes from a %d-byte payload", total, len(b))
		}
		Assemble(chunks, 1<<16)
	})
}

// FuzzParseHeader: a header never points outside its datagram.
func FuzzParseHeader(f *testing.F) {
	f.Add(protect(f, V1, []byte{1, 2, 3, 4, 5, 6, 7, 8}, 0, nil))
	f.Add([]byte{0xf0, 0, 0, 0, 1, 0, 4, 9, 9, 9, 9})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		if err != nil {
			if !errors.Is(err, ErrPacket) {
				t.Fatalf("error %v does not wrap ErrPacket", err)
			}
			return
		}
		if h.End > len(b) || h.PNOffset > h.End || len(h.DCID) > 20 || len(h.SCID) > 20 {
			t.Fatalf("header %+v of a %d-byte datagram", h, len(b))
		}
	})
}
