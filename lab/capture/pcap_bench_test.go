package capture

import (
	"bytes"
	"net/netip"
	"testing"
	"time"
)

// benchCapture is a synthesized pcapng of n TCP connections, each a
// handshake, a 2000-byte request, a 9600-byte answer and two FINs.
func benchCapture(tb testing.TB, n int) []byte {
	tb.Helper()
	ts := time.Unix(1700000000, 0)
	var conns []ScriptConn
	var events []ScriptEvent
	req, resp := bytes.Repeat([]byte("q"), 2000), bytes.Repeat([]byte("r"), 9600)
	for i := range n {
		conns = append(conns, ScriptConn{TCP: true, Client: netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), uint16(10000+i)),
			Server: netip.MustParseAddrPort("10.0.0.2:443")})
		events = append(events,
			ScriptEvent{TS: ts, Kind: EventOpen, Conn: i},
			ScriptEvent{TS: ts.Add(time.Millisecond), Kind: EventData, Conn: i, FromClient: true, Data: req},
			ScriptEvent{TS: ts.Add(2 * time.Millisecond), Kind: EventData, Conn: i, Data: resp},
			ScriptEvent{TS: ts.Add(3 * time.Millisecond), Kind: EventClose, Conn: i, FromClient: true},
			ScriptEvent{TS: ts.Add(3 * time.Millisecond), Kind: EventClose, Conn: i})
	}
	var buf bytes.Buffer
	if err := WriteScript(&buf, conns, events); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// TestReadAllocatesPerFileNotPerPacket: reading a capture of 1000
// connections allocates what reading one does (buffers reused from packet
// to packet), within a margin.
func TestReadAllocatesPerFileNotPerPacket(t *testing.T) {
	small, big := benchCapture(t, 1), benchCapture(t, 1000)
	count := func(data []byte) (allocs float64, packets int) {
		allocs = testing.AllocsPerRun(5, func() {
			packets = 0
			if _, err := Read(bytes.NewReader(data), func(*Packet) { packets++ }); err != nil {
				t.Fatal(err)
			}
		})
		return allocs, packets
	}
	a1, n1 := count(small)
	a2, n2 := count(big)
	if n2 != 1000*n1 || a2 > a1+8 {
		t.Fatalf("%d packets: %.0f allocations; %d packets: %.0f", n1, a1, n2, a2)
	}
}

// BenchmarkRead reads a synthesized pcapng of 200 connections (about 4000
// packets, 2.6 MB): ns and allocations per capture.
func BenchmarkRead(b *testing.B) {
	data := benchCapture(b, 200)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Read(bytes.NewReader(data), func(*Packet) {}); err != nil {
			b.Fatal(err)
		}
	}
}
