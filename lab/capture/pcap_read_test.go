package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"testing"
	"time"
)

// testOrder is binary.LittleEndian or binary.BigEndian.
type testOrder interface {
	binary.ByteOrder
	binary.AppendByteOrder
}

// ngBuild builds a pcapng block by block in one byte order per section.
type ngBuild struct {
	order testOrder
	b     []byte
}

func (g *ngBuild) block(typ uint32, body []byte) {
	for len(body)%4 != 0 {
		body = append(body, 0)
	}
	size := uint32(12 + len(body))
	g.b = g.order.AppendUint32(g.b, typ)
	g.b = g.order.AppendUint32(g.b, size)
	g.b = append(g.b, body...)
	g.b = g.order.AppendUint32(g.b, size)
}

// opts encodes options and opt_endofopt.
func (g *ngBuild) opts(kv ...any) []byte {
	var b []byte
	for i := 0; i < len(kv); i += 2 {
		v := kv[i+1].([]byte)
		b = g.order.AppendUint16(b, uint16(kv[i].(int)))
		b = g.order.AppendUint16(b, uint16(len(v)))
		b = append(b, v...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
	}
	return append(b, 0, 0, 0, 0)
}

func (g *ngBuild) shb(major uint16, opts ...any) {
	body := g.order.AppendUint32(nil, 0x1A2B3C4D)
	body = g.order.AppendUint16(body, major)
	body = g.order.AppendUint16(body, 0)
	body = g.order.AppendUint64(body, ^uint64(0))
	g.block(pcapngSHB, append(body, g.opts(opts...)...))
}

func (g *ngBuild) idb(link LinkType, snap uint32, opts ...any) {
	body := g.order.AppendUint16(nil, uint16(link))
	body = g.order.AppendUint16(body, 0)
	body = g.order.AppendUint32(body, snap)
	g.block(pcapngIDB, append(body, g.opts(opts...)...))
}

func (g *ngBuild) epb(iface uint32, ticks uint64, data []byte) {
	body := g.order.AppendUint32(nil, iface)
	g.block(pcapngEPB, append(g.packetFields(body, ticks, data), data...))
}

func (g *ngBuild) opb(iface uint16, ticks uint64, data []byte) {
	body := g.order.AppendUint16(nil, iface)
	body = g.order.AppendUint16(body, 0) // drops
	g.block(pcapngOPB, append(g.packetFields(body, ticks, data), data...))
}

func (g *ngBuild) packetFields(b []byte, ticks uint64, data []byte) []byte {
	b = g.order.AppendUint32(b, uint32(ticks>>32))
	b = g.order.AppendUint32(b, uint32(ticks))
	b = g.order.AppendUint32(b, uint32(len(data)))
	return g.order.AppendUint32(b, uint32(len(data)))
}

func (g *ngBuild) spb(orig uint32, data []byte) {
	g.block(pcapngSPB, append(g.order.AppendUint32(nil, orig), data...))
}

// udpFrame is an Ethernet frame of a UDP datagram to port dport.
func udpFrame(dport uint16, payload string) []byte {
	return buildFrame(nil, netip.MustParseAddrPort("10.0.0.1:1000"), netip.AddrPortFrom(netip.MustParseAddr("10.0.0.2"), dport), 17, 0, 0, 0, []byte(payload))
}

// sll2 reframes an Ethernet frame of IPv4 as Linux cooked capture v2.
func sll2(frame []byte) []byte {
	h := []byte{0x08, 0x00, 0, 0, 0, 0, 0, 1, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0}
	return append(h, frame[14:]...)
}

type seen struct {
	TS      time.Time
	Port    uint16
	Payload string
}

func readSeen(t *testing.T, data []byte) ([]seen, *Meta, error) {
	t.Helper()
	var got []seen
	meta, err := Read(bytes.NewReader(data), func(p *Packet) {
		got = append(got, seen{p.TS, p.Dst.Port(), string(p.Payload)})
	})
	return got, meta, err
}

// TestReadPcapngSections reads two sections, little- then big-endian, with
// interfaces of several link types and timestamp resolutions (default µs,
// 2^-10 s with an offset, ms, ns), enhanced, obsolete and simple packet
// blocks, and blocks the reader skips (a custom block, a Decryption
// Secrets Block, interface statistics).
func TestReadPcapngSections(t *testing.T) {
	g := &ngBuild{order: binary.LittleEndian}
	g.shb(1, 1, []byte("first"))
	g.idb(LinkTypeEthernet, 65535)
	g.idb(LinkTypeRaw, 0, 9, []byte{0x80 | 10}, 14, binary.LittleEndian.AppendUint64(nil, 100))
	g.idb(LinkTypeLinuxSLL2, 0, 9, []byte{3})
	g.idb(20, 0) // an unassigned link type: not SLL2 (276)
	g.epb(0, 1_700_000_000_123_456, udpFrame(1, "eth"))
	g.block(0x00000BAD, []byte("custom"))
	g.block(pcapngDSB, []byte("TLSK...."))
	g.epb(1, 5*1024+3, udpFrame(2, "raw")[14:])
	g.block(5, make([]byte, 12)) // interface statistics
	g.epb(2, 1500, sll2(udpFrame(3, "sll2")))
	g.epb(3, 0, sll2(udpFrame(4, "type 20")))
	g.spb(uint32(len(udpFrame(5, "simple"))), udpFrame(5, "simple"))
	g.opb(1, 1024, udpFrame(6, "obsolete")[14:])
	g.order = binary.BigEndian
	g.shb(1, 1, []byte("second"))
	g.idb(LinkTypeEthernet, 0, 9, []byte{9})
	g.epb(0, 2_000_000_007, udpFrame(7, "big-endian"))

	got, meta, err := readSeen(t, g.b)
	if err != nil {
		t.Fatal(err)
	}
	want := []seen{
		{time.Unix(1700000000, 123456000).UTC(), 1, "eth"},
		// 3/1024 s is 2929687.5 ns: rounded down (pcapgo's 3 × ⌊10^9/1024⌋ gave 2929686).
		{time.Unix(105, 2929687).UTC(), 2, "raw"},
		{time.Unix(1, 500_000_000).UTC(), 3, "sll2"},
		{time.Time{}, 5, "simple"},
		{time.Unix(101, 0).UTC(), 6, "obsolete"},
		{time.Unix(2, 7).UTC(), 7, "big-endian"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("packets:\n%v\nwant\n%v", got, want)
	}
	if meta.Format != "pcapng" || meta.Comment != "first" || meta.Packets != 7 || meta.Undecodable != 1 {
		t.Errorf("meta %+v", meta)
	}
}

// TestReadSimplePacketSnaplen: a simple packet block holds min(original
// length, snaplen) bytes (draft-ietf-opsawg-pcapng §4.4), so an original
// length beyond the block is fine when the snaplen cut the packet.
func TestReadSimplePacketSnaplen(t *testing.T) {
	frame := udpFrame(9, "0123456789")
	g := &ngBuild{order: binary.LittleEndian}
	g.shb(1)
	g.idb(LinkTypeEthernet, uint32(len(frame)-4))
	g.spb(1500, frame[:len(frame)-4])
	got, meta, err := readSeen(t, g.b)
	if err != nil || len(got) != 1 || got[0].Payload != "012345" || meta.Packets != 1 {
		t.Fatalf("%v, %+v, %v", got, meta, err)
	}
}

// TestReadPcapngMalformed: what the reader cannot make sense of is a
// *CaptureError naming the field and where it is, not a panic, a skipped
// packet or a guess.
func TestReadPcapngMalformed(t *testing.T) {
	frame := udpFrame(1, "x")
	start := func(order testOrder) *ngBuild {
		g := &ngBuild{order: order}
		g.shb(1)
		return g
	}
	for _, tc := range []struct {
		name  string
		build func(g *ngBuild)
		field string
	}{
		{"packet before any interface", func(g *ngBuild) { g.epb(0, 0, frame) }, "interface_id"},
		{"interface of an earlier section", func(g *ngBuild) {
			g.idb(LinkTypeEthernet, 0)
			g.idb(LinkTypeEthernet, 0)
			g.epb(1, 0, frame)
			g.shb(1)
			g.idb(LinkTypeEthernet, 0)
			g.epb(1, 0, frame)
		}, "interface_id"},
		{"simple packet without interface", func(g *ngBuild) { g.spb(uint32(len(frame)), frame) }, "interface_id"},
		{"simple packet longer than its block", func(g *ngBuild) {
			g.idb(LinkTypeEthernet, 0)
			g.spb(uint32(len(frame)+8), frame)
		}, "original_packet_length"},
		{"captured length past the block", func(g *ngBuild) {
			g.idb(LinkTypeEthernet, 0)
			g.epb(0, 0, frame)
			at := len(g.b) - 4 - (len(frame)+3)&^3 - 8 // captured_length
			g.order.PutUint32(g.b[at:], uint32(len(frame)+8))
		}, "captured_length"},
		{"packet block too short", func(g *ngBuild) {
			g.idb(LinkTypeEthernet, 0)
			g.block(pcapngEPB, make([]byte, 16))
		}, "packet block length"},
		{"unknown major version", func(g *ngBuild) { g.shb(2) }, "major_version"},
		{"option past its block", func(g *ngBuild) {
			g.idb(LinkTypeEthernet, 0, 2, []byte("lo"))
			g.order.PutUint16(g.b[len(g.b)-4-4-4-2:], 9) // if_name's length
		}, "option length"},
	} {
		for _, order := range []testOrder{binary.LittleEndian, binary.BigEndian} {
			g := start(order)
			tc.build(g)
			_, _, err := readSeen(t, g.b)
			var ce *CaptureError
			if !errors.As(err, &ce) || ce.Field != tc.field || !errors.Is(err, ErrMalformed) {
				t.Errorf("%s (%v): %v, want a malformed %s", tc.name, order, err, tc.field)
			}
		}
	}
}

// classicHeader is a classic pcap file header.
func classicHeader(order testOrder, magic uint32, link uint32) []byte {
	b := order.AppendUint32(nil, magic)
	b = order.AppendUint16(b, 2)
	b = order.AppendUint16(b, 4)
	b = append(b, make([]byte, 8)...)
	b = order.AppendUint32(b, 65535)
	return order.AppendUint32(b, link)
}

func classicRecord(order testOrder, sec, frac uint32, data []byte, orig int) []byte {
	b := order.AppendUint32(nil, sec)
	b = order.AppendUint32(b, frac)
	b = order.AppendUint32(b, uint32(len(data)))
	b = order.AppendUint32(b, uint32(orig))
	return append(b, data...)
}

// TestReadClassicPcap reads classic pcaps in both byte orders, with micro-
// and nanosecond timestamps, and link types beyond a byte (SLL2 is 276;
// 20 is not SLL2), and rejects a record longer than its packet.
func TestReadClassicPcap(t *testing.T) {
	for _, tc := range []struct {
		order testOrder
		magic uint32
		link  uint32
		frame []byte
		ns    int
		want  int // decoded packets
	}{
		{binary.LittleEndian, 0xa1b2c3d4, 1, udpFrame(1, "le micro"), 7000, 1},
		{binary.BigEndian, 0xa1b2c3d4, 1, udpFrame(1, "be micro"), 7000, 1},
		{binary.LittleEndian, 0xa1b23c4d, 276, sll2(udpFrame(1, "le nano sll2")), 7, 1},
		{binary.BigEndian, 0xa1b23c4d, 276 | 0x10000000, sll2(udpFrame(1, "be nano sll2, fcs bits")), 7, 1},
		{binary.LittleEndian, 0xa1b23c4d, 20, sll2(udpFrame(1, "type 20")), 7, 0},
	} {
		name := fmt.Sprintf("%v %x link %d", tc.order, tc.magic, tc.link)
		data := append(classicHeader(tc.order, tc.magic, tc.link), classicRecord(tc.order, 100, 7, tc.frame, len(tc.frame))...)
		got, meta, err := readSeen(t, data)
		if err != nil || meta.Format != "pcap" || meta.Packets != 1 || len(got) != tc.want {
			t.Errorf("%s: %v, %+v, %v", name, got, meta, err)
			continue
		}
		if tc.want == 1 && (!got[0].TS.Equal(time.Unix(100, int64(tc.ns))) || got[0].Port != 1) {
			t.Errorf("%s: %+v", name, got[0])
		}
		cut, meta, err := readSeen(t, data[:len(data)-3])
		if err != nil || len(cut) != 0 || len(meta.Warnings) != 1 {
			t.Errorf("%s cut: %v, %+v, %v", name, cut, meta, err)
		}
	}
	le := binary.LittleEndian
	frame := udpFrame(1, "x")
	for name, rec := range map[string][]byte{
		"captured beyond the original": classicRecord(le, 1, 0, frame, len(frame)-1),
		"captured beyond maxPacket":    classicRecord(le, 1, 0, make([]byte, maxPacket+1), maxPacket+1),
	} {
		_, _, err := readSeen(t, append(classicHeader(le, 0xa1b2c3d4, 1), rec...))
		var ce *CaptureError
		if !errors.As(err, &ce) || ce.Field != "incl_len" || ce.Offset != 24+8 {
			t.Errorf("%s: %v, want a malformed incl_len at 32", name, err)
		}
	}
}

// TestLinkTypeSLL2 writes LINKTYPE_LINUX_SLL2 frames with our pcapng
// writer: the interface says 276 (gopacket kept link types in a byte and
// wrote 20) and Read decodes them.
func TestLinkTypeSLL2(t *testing.T) {
	var buf bytes.Buffer
	w, err := newNgWriter(&buf, ngSection{}, ngInterfaceDesc{Link: LinkTypeLinuxSLL2})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.writePacket(time.Unix(3, 0), sll2(udpFrame(8, "sll2"))); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	shb := binary.LittleEndian.Uint32(buf.Bytes()[4:])
	if lt := binary.LittleEndian.Uint16(buf.Bytes()[shb+8:]); lt != 276 {
		t.Fatalf("interface link type %d, want 276", lt)
	}
	got, _, err := readSeen(t, buf.Bytes())
	if err != nil || len(got) != 1 || got[0].Payload != "sll2" {
		t.Fatalf("%v, %v", got, err)
	}
}
