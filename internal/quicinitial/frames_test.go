package quicinitial

import (
	"bytes"
	"errors"
	"testing"
)

func TestParseFrames(t *testing.T) {
	chunks, err := ParseFrames([]byte{0, 1, 0x06, 0x00, 0x02, 'h', 'i', 0x1c, 0, 0, 0})
	if err != nil || len(chunks) != 1 || string(chunks[0].Data) != "hi" || chunks[0].Off != 0 {
		t.Errorf("PADDING, PING, CRYPTO, CONNECTION_CLOSE: %v %v", chunks, err)
	}
	// ACK with one extra range and ECN counts, then CRYPTO at offset 300.
	b := []byte{0x03, 5, 0, 1, 0, 1, 0, 1, 2, 3, 0x06, 0x41, 0x2c, 0x01, 'x'}
	if chunks, err := ParseFrames(b); err != nil || len(chunks) != 1 || chunks[0].Off != 300 || string(chunks[0].Data) != "x" {
		t.Errorf("ACK-ECN then CRYPTO: %v %v", chunks, err)
	}
	bad := [][]byte{
		{0x40},                               // frame type cut
		{0x06, 0x00},                         // CRYPTO without length
		{0x06, 0x00, 0x05, 1},                // CRYPTO data past the end
		{0x06},                               // CRYPTO without offset
		{0x02, 0x00},                         // ACK cut
		{0x02, 0, 0, 0x3f, 0},                // ACK range count past the end
		{0x02, 0, 0, 1, 0, 0},                // ACK range cut
		{0x08},                               // STREAM: not in Initial packets
		{0x06, 0xc0, 0, 0, 1, 0, 0, 0, 1, 0}, // CRYPTO offset past 2^32
	}
	for _, b := range bad {
		if _, err := ParseFrames(b); !errors.Is(err, ErrPacket) {
			t.Errorf("%x: %v, want ErrPacket", b, err)
		}
	}
	// The chunks before a bad frame come back with the error.
	if chunks, err := ParseFrames([]byte{0x06, 0, 1, 'a', 0x08}); err == nil || len(chunks) != 1 {
		t.Errorf("CRYPTO then STREAM: %v %v", chunks, err)
	}
}

func TestAssembleOutOfOrder(t *testing.T) {
	chunks := []Chunk{{Off: 6, Data: []byte("world")}, {Off: 0, Data: []byte("hello ")}, {Off: 3, Data: []byte("lo wo")}}
	if got := Assemble(chunks, 100); !bytes.Equal(got, []byte("hello world")) {
		t.Fatalf("Assemble = %q", got)
	}
	if chunks[0].Off != 6 {
		t.Error("Assemble reordered its argument")
	}
	if got := Assemble([]Chunk{{Off: 5, Data: []byte("x")}}, 100); len(got) != 0 {
		t.Fatalf("a hole at offset 0 gave %q", got)
	}
	if got := Assemble(chunks, 4); string(got) != "hello " {
		t.Fatalf("limit 4 gave %q, want the first chunk whole", got)
	}
}
