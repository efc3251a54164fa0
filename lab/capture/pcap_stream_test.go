package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"reflect"
	"runtime"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// streamCapture synthesizes a pcapng of two TCP connections with data both
// ways and one UDP datagram: 2×17 TCP packets (handshake 3, hello and its
// ACK 2, 9600 bytes in 7 segments and an ACK, two FINs and their ACKs 4)
// and 1 UDP.
func streamCapture(t *testing.T) []byte {
	t.Helper()
	ts := time.Unix(1700000000, 0)
	conns := []ScriptConn{
		{TCP: true, Client: netip.MustParseAddrPort("10.0.0.1:40000"), Server: netip.MustParseAddrPort("10.0.0.2:443")},
		{TCP: true, Client: netip.MustParseAddrPort("[fd00::1]:40001"), Server: netip.MustParseAddrPort("[fd00::2]:853")},
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 600)
	var events []ScriptEvent
	for i := range conns {
		events = append(events,
			ScriptEvent{TS: ts, Kind: EventOpen, Conn: i},
			ScriptEvent{TS: ts.Add(time.Millisecond), Kind: EventData, Conn: i, FromClient: true, Data: []byte("hello")},
			ScriptEvent{TS: ts.Add(2 * time.Millisecond), Kind: EventData, Conn: i, Data: big},
			ScriptEvent{TS: ts.Add(3 * time.Millisecond), Kind: EventClose, Conn: i, FromClient: true},
			ScriptEvent{TS: ts.Add(3 * time.Millisecond), Kind: EventClose, Conn: i})
	}
	events = append(events, ScriptEvent{TS: ts, Kind: EventData, Conn: -1,
		Src: netip.MustParseAddrPort("10.0.0.1:5353"), Dst: netip.MustParseAddrPort("10.0.0.2:53"), Data: []byte("dns")})
	var buf bytes.Buffer
	if err := WriteScript(&buf, conns, events); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// readAll reads a capture into copies of its packets.
func readAll(r io.Reader) ([]Packet, *Meta, error) {
	var out []Packet
	meta, err := Read(r, func(p *Packet) {
		q := *p
		q.Payload = append([]byte(nil), p.Payload...)
		out = append(out, q)
	})
	return out, meta, err
}

// TestReadStreams reads the same captures whole and through readers that
// hand over one byte, or half of what is asked, at a time: the packets,
// the metadata and the errors are the same, so the reader depends on no
// more of the file than it has read.
func TestReadStreams(t *testing.T) {
	good := streamCapture(t)
	cut := good[:len(good)-7] // a partial last block
	bad := append([]byte(nil), good...)
	// Break the last block's length field: an error, even that late.
	last := len(bad) - int(binary.LittleEndian.Uint32(bad[len(bad)-4:]))
	binary.LittleEndian.PutUint32(bad[last+4:], 13)
	for name, data := range map[string][]byte{"whole": good, "cut": cut, "bad": bad, "pcap": classicPcap(t, good)} {
		want, wantMeta, wantErr := readAll(bytes.NewReader(data))
		for rname, r := range map[string]io.Reader{"one byte": iotest.OneByteReader(bytes.NewReader(data)), "half": iotest.HalfReader(bytes.NewReader(data))} {
			got, meta, err := readAll(r)
			if fmt.Sprint(err) != fmt.Sprint(wantErr) || !reflect.DeepEqual(meta, wantMeta) || !reflect.DeepEqual(got, want) {
				t.Errorf("%s, %s: %d packets, %+v, %v; read whole: %d packets, %+v, %v", name, rname, len(got), meta, err, len(want), wantMeta, wantErr)
			}
		}
		switch name {
		case "whole", "pcap":
			if wantErr != nil || len(want) != 2*(3+2+(7+1)+4)+1 || len(wantMeta.Warnings) != 0 {
				t.Errorf("%s: %d packets, %+v, %v", name, len(want), wantMeta, wantErr)
			}
		case "cut":
			if wantErr != nil || len(wantMeta.Warnings) != 1 || wantMeta.Warnings[0] != fmt.Sprintf("pcapng cut short: %d trailing bytes of a partial block ignored", int(binary.LittleEndian.Uint32(good[len(good)-4:]))-7) {
				t.Errorf("cut: %+v, %v", wantMeta, wantErr)
			}
		case "bad":
			var ce *CaptureError
			if !errors.As(wantErr, &ce) || ce.Field != "block_total_length" || ce.Offset != int64(last+4) {
				t.Errorf("bad: %v, want a block_total_length error at %d", wantErr, last+4)
			}
		}
	}
}

// classicPcap rewrites a pcapng's packets as a classic pcap.
func classicPcap(t *testing.T, ng []byte) []byte {
	t.Helper()
	r, err := pcapgo.NewNgReader(bytes.NewReader(ng), pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	w := pcapgo.NewWriterNanos(&out)
	if err := w.WriteFileHeader(maxPacket, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for {
		data, ci, err := r.ReadPacketData()
		if err == io.EOF {
			return out.Bytes()
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: ci.Timestamp, CaptureLength: len(data), Length: len(data)}, data); err != nil {
			t.Fatal(err)
		}
	}
}

// failingReader returns the capture's first n bytes, then err.
type failingReader struct {
	data []byte
	n    int
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, r.err
	}
	k := copy(p[:min(len(p), r.n)], r.data)
	r.data, r.n = r.data[k:], r.n-k
	return k, nil
}

// TestReadFailure: a reader that fails (not at the end of the file) is an
// error wrapping the reader's, for pcapng and pcap, in the header or after
// some packets; it is not a capture cut short.
func TestReadFailure(t *testing.T) {
	broken := errors.New("disk on fire")
	good := streamCapture(t)
	for name, data := range map[string][]byte{"pcapng": good, "pcap": classicPcap(t, good)} {
		for _, n := range []int{0, 10, len(data) / 2} {
			_, _, err := readAll(&failingReader{data: data, n: n, err: broken})
			if !errors.Is(err, broken) {
				t.Errorf("%s failing after %d bytes: %v, want an error wrapping %v", name, n, err, broken)
			}
		}
	}
}

// TestReadBoundsSnaplen: a capture claiming a 4 GiB snaplen must not make
// Read allocate it (pcapgo, which read captures before, sized its reused
// packet buffer by the interface's snaplen).
func TestReadBoundsSnaplen(t *testing.T) {
	data := streamCapture(t)
	// The interface description block follows the section header.
	shb := int(binary.LittleEndian.Uint32(data[4:]))
	if binary.LittleEndian.Uint32(data[shb:]) != 1 {
		t.Fatal("no interface description block after the section header")
	}
	binary.LittleEndian.PutUint32(data[shb+12:], 0xffffffff)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	pkts, meta, err := readAll(bytes.NewReader(data))
	runtime.ReadMemStats(&after)
	if err != nil || len(pkts) != 2*(3+2+(7+1)+4)+1 || len(meta.Warnings) != 0 {
		t.Fatalf("%d packets, %+v, %v", len(pkts), meta, err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
		t.Fatalf("reading a %d-byte capture allocated %d MB", len(data), grew>>20)
	}
}
