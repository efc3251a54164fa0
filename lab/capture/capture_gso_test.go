package capture

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"
)

// TestSplitGSO splits hand-made TSO (IPv4/TCP) and UDP GSO (IPv6/UDP)
// super-frames and checks lengths, sequence numbers, flags and that every
// checksum verifies.
func TestSplitGSO(t *testing.T) {
	payload := make([]byte, 3000)
	for i := range payload {
		payload[i] = byte(i)
	}
	eth := func(typ uint16) []byte { return binary.BigEndian.AppendUint16(make([]byte, 12), typ) }
	// IPv4 + TCP, seq 1000, flags CWR|PSH|ACK|FIN.
	v4 := append(eth(0x0800), 0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 127, 0, 0, 1, 127, 0, 0, 2)
	tcp := []byte{0x30, 0x39, 0x01, 0xbb, 0, 0, 0x03, 0xe8, 0, 0, 0, 0, 0x50, 0x80 | 0x18 | 0x01, 0xff, 0xff, 0, 0, 0, 0}
	frame := append(append(v4, tcp...), payload...)
	segs := splitGSO(frame, vnetHdr{gsoType: gsoTCPv4 | gsoECN, gsoSize: 1448})
	if len(segs) != 3 {
		t.Fatalf("TSO frame split into %d segments, want 3", len(segs))
	}
	var got []byte
	for i, s := range segs {
		ip, l4 := s[14:34], s[34:]
		if int(binary.BigEndian.Uint16(ip[2:])) != len(s)-14 || onesSum(0, ip) != 0xffff {
			t.Errorf("segment %d: IPv4 length %d or checksum wrong", i, binary.BigEndian.Uint16(ip[2:]))
		}
		if seq := binary.BigEndian.Uint32(l4[4:]); seq != 1000+uint32(i*1448) {
			t.Errorf("segment %d: seq %d", i, seq)
		}
		fin, cwr := l4[13]&0x01 != 0, l4[13]&0x80 != 0
		if fin != (i == 2) || cwr != (i == 0) {
			t.Errorf("segment %d: flags %#x", i, l4[13])
		}
		if onesSum(uint32(onesSum(0, ip[12:20]))+6+uint32(len(l4)), l4) != 0xffff {
			t.Errorf("segment %d: TCP checksum does not verify", i)
		}
		got = append(got, l4[20:]...)
	}
	if !bytes.Equal(got, payload) {
		t.Error("TSO segments do not carry the payload in order")
	}
	// IPv6 + UDP.
	v6 := append(eth(0x86dd), 0x60, 0, 0, 0, 0, 0, 17, 64)
	v6 = append(append(v6, net.IPv6loopback...), net.IPv6loopback...)
	frame = append(append(v6, 0x30, 0x39, 0x01, 0xbb, 0, 0, 0, 0), payload[:2500]...)
	segs = splitGSO(frame, vnetHdr{gsoType: gsoUDPL4, gsoSize: 1200})
	if len(segs) != 3 || len(segs[2]) != 14+40+8+100 {
		t.Fatalf("UDP GSO frame split into %d datagrams", len(segs))
	}
	for i, s := range segs {
		l4 := s[54:]
		if int(binary.BigEndian.Uint16(s[18:])) != len(l4) || int(binary.BigEndian.Uint16(l4[4:])) != len(l4) {
			t.Errorf("datagram %d: IPv6 or UDP length wrong", i)
		}
		if onesSum(uint32(onesSum(0, s[22:54]))+17+uint32(len(l4)), l4) != 0xffff {
			t.Errorf("datagram %d: UDP checksum does not verify", i)
		}
	}
	if plain := splitGSO(frame, vnetHdr{}); len(plain) != 1 || !bytes.Equal(plain[0], frame) {
		t.Error("a frame without GSO was changed")
	}
	if short := splitGSO(frame[:20], vnetHdr{gsoType: gsoUDPL4, gsoSize: 1200}); len(short) != 1 {
		t.Error("a truncated frame was split")
	}
}

// FuzzSplitGSO feeds arbitrary frames and virtio_net_hdr fields to the
// super-packet splitter: it must never panic, and its segments must carry
// no more than the frame's bytes after the headers.
func FuzzSplitGSO(f *testing.F) {
	f.Add(append(binary.BigEndian.AppendUint16(make([]byte, 12), 0x0800), 0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17), uint8(gsoUDPL4), uint16(8))
	f.Add(binary.BigEndian.AppendUint16(make([]byte, 12), 0x86dd), uint8(gsoTCPv6), uint16(1))
	f.Fuzz(func(t *testing.T, frame []byte, typ uint8, size uint16) {
		segs := splitGSO(frame, vnetHdr{gsoType: typ, gsoSize: size})
		if len(segs) == 0 {
			t.Fatal("no packets out")
		}
		for _, s := range segs {
			if len(segs) > 1 && len(s) > len(frame) {
				t.Fatalf("segment of %d bytes from a frame of %d", len(s), len(frame))
			}
		}
	})
}
