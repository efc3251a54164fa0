package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// fuzzPacket is a packet as a reader returned it, copied.
type fuzzPacket struct {
	data []byte
	ts   time.Time
	link uint8 // pcapgo keeps link types in a byte
}

// stricter are the fields of a *CaptureError our reader returns where
// pcapgo reads on: lengths it does not check (it trusts the leading block
// length and walks past a block's end), and resolutions it cannot convert.
var stricter = map[string]bool{
	"block_total_length": true, "trailing block_total_length": true, "option length": true,
	"section header block length": true, "interface description block length": true,
	"packet block length": true, "simple packet block length": true, "if_tsresol": true,
	// pcapgo reads a packet past its block's end (near the end of the
	// file, the short read is its end of file).
	"captured_length": true, "original_packet_length": true,
	// pcapgo reads a short if_tsoffset or if_filter from the stale bytes
	// of its option buffer.
	"if_tsoffset": true, "if_filter": true,
}

// FuzzReadCapture is a differential test against gopacket's pcapgo: when
// pcapgo reads bytes to their end, our reader returns the same packets
// (data, link type, timestamp) or a *CaptureError naming a check pcapgo
// lacks; whatever the bytes, it returns a clear error rather than panic.
func FuzzReadCapture(f *testing.F) {
	for _, path := range []string{"../observe/testdata/ech-tls.pcapng", "../observe/testdata/fuzz/FuzzCompare/530c8f0964b260e2"} {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, b := range fuzzSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) { diffPcapgo(t, b) })
}

// TestReadAgreesWithPcapgo: the seeds of FuzzReadCapture (the golden
// capture, both byte orders, every packet block, classic pcap) are read
// to their end by pcapgo and compared packet by packet.
func TestReadAgreesWithPcapgo(t *testing.T) {
	golden, err := os.ReadFile("../observe/testdata/ech-tls.pcapng")
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range append(fuzzSeeds(t), golden) {
		if n := diffPcapgo(t, b); n == 0 {
			t.Errorf("seed %d: %d packets compared", i, n)
		}
	}
}

// diffPcapgo reads b with both readers and fails t where they disagree
// (see FuzzReadCapture); it returns how many packets pcapgo read to the
// end and were compared.
func diffPcapgo(t *testing.T, b []byte) int {
	t.Helper()
	ours, err := readOurs(b)
	var ce *CaptureError
	switch {
	case err == nil || err == io.ErrUnexpectedEOF:
	case errors.As(err, &ce):
		if ce.Err != ErrMalformed && ce.Err != ErrTruncated {
			t.Fatalf("capture error %v wraps %v", ce, ce.Err)
		}
		if stricter[ce.Field] {
			return 0
		}
	case errors.Is(err, ErrNotCapture):
		return 0
	default:
		t.Fatalf("not a capture error: %v", err)
	}
	if !pcapgoSafe(b) {
		return 0
	}
	theirs, accepted := readPcapgo(b)
	if accepted && err != nil && err != io.ErrUnexpectedEOF {
		t.Fatalf("pcapgo read %d packets to the end; we: %v", len(theirs), err)
	}
	if !accepted && len(theirs) > len(ours) {
		theirs = theirs[:len(ours)] // pcapgo stopped: compare what it read
	}
	if accepted && len(theirs) != len(ours) || len(theirs) > len(ours) {
		t.Fatalf("pcapgo read %d packets (to the end: %v), we %d (%v)", len(theirs), accepted, len(ours), err)
	}
	for i, p := range theirs {
		if q := ours[i]; !bytes.Equal(p.data, q.data) || p.link != q.link || !p.ts.Equal(q.ts) {
			t.Fatalf("packet %d: pcapgo %x %d %v, we %x %d %v", i, p.data, p.link, p.ts, q.data, q.link, q.ts)
		}
	}
	if !accepted {
		return 0
	}
	return len(theirs)
}

// readOurs reads with our reader. Timestamps are converted as pcapgo
// converts them, from the ticks we read, after checking ours against an
// exact conversion: pcapgo rounds 2^-n resolutions (10^9 / 2^n is cut to
// an integer first) and reads an if_tsresol of 0 as microseconds.
func readOurs(b []byte) ([]fuzzPacket, error) {
	src, err := openCapture(bytes.NewReader(b), &Meta{})
	if err != nil {
		return nil, err
	}
	var nsPer int64 // classic pcap: nanoseconds per unit of the fraction
	if r, ok := src.(*pcapReader); ok {
		nsPer = r.nsPer
	}
	var out []fuzzPacket
	var rec record
	for {
		err := src.next(&rec)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		if want := exactTime(&rec, nsPer); !rec.ts.Equal(want) {
			return out, fmt.Errorf("timestamp %v, want %v", rec.ts, want)
		}
		out = append(out, fuzzPacket{data: bytes.Clone(rec.data), ts: pcapgoTime(&rec, nsPer), link: uint8(rec.link)})
	}
}

// exactTime converts rec's ticks with math/big.
func exactTime(rec *record, nsPer int64) time.Time {
	if rec.iface == nil {
		return time.Unix(int64(rec.ticks>>32), int64(uint32(rec.ticks))*nsPer).UTC()
	}
	i := rec.iface
	if rec.ts.IsZero() && rec.ticks == 0 {
		return time.Time{} // a simple packet block has no timestamp
	}
	per := new(big.Int).SetUint64(i.perSec)
	sec, frac := new(big.Int).QuoRem(new(big.Int).SetUint64(rec.ticks), per, new(big.Int))
	ns := frac.Mul(frac, big.NewInt(1e9)).Quo(frac, per)
	return time.Unix(int64(sec.Uint64())+i.offset, ns.Int64()).UTC()
}

// pcapgoTime is pcapgo's conversion of rec's ticks.
func pcapgoTime(rec *record, nsPer int64) time.Time {
	if rec.iface == nil {
		sec, frac := uint32(rec.ticks>>32), uint32(rec.ticks)
		return time.Unix(int64(sec), int64(frac*uint32(nsPer))).UTC() // in 32 bits, as pcapgo does
	}
	if rec.ts.IsZero() && rec.ticks == 0 {
		return time.Time{}
	}
	res := rec.iface.tsresol
	if res == 0 {
		res = 6
	}
	var mask uint64 = 1
	if res&0x80 != 0 {
		mask = 1 << (res & 0x7f)
	} else {
		for range res & 0x7f {
			mask *= 10
		}
	}
	up, down := uint64(1), uint64(1)
	if mask < 1e9 {
		up = 1e9 / mask
	} else {
		down = mask / 1e9
	}
	return time.Unix(int64(rec.ticks/mask+uint64(rec.iface.offset)), int64(rec.ticks%mask*up/down)).UTC()
}

// pcapgoSafe says whether pcapgo can read b without allocating gigabytes:
// it sizes its packet buffer by the interface's snaplen and the packet's
// captured length (a simple packet's original length), which must then
// stay small. (Read itself never sizes a
// buffer by a field: TestReadBoundsSnaplen.)
func pcapgoSafe(b []byte) bool {
	if len(b) < 4 || !bytes.Equal(b[:4], []byte{0x0a, 0x0d, 0x0d, 0x0a}) {
		return true // classic pcap: SetSnaplen bounds it
	}
	blocks, err := newNgBlocks(bytes.NewReader(b))
	if err != nil {
		return true
	}
	for blk := blocks.block(); blk != nil; blk = blocks.block() {
		if !smallBuffers(blocks.order, blk) {
			return false
		}
	}
	if blocks.failure() != nil {
		return false
	}
	// pcapgo sizes the buffer of a packet cut short before reading it.
	return smallBuffers(blocks.order, b[blocks.off:])
}

// smallBuffers says whether the snaplen or the captured length of a block,
// whole or the start of one, is at most 1 MiB.
func smallBuffers(o binary.ByteOrder, blk []byte) bool {
	if len(blk) < 4 {
		return true
	}
	at := map[uint32]int{pcapngIDB: 12, pcapngEPB: 20, pcapngOPB: 20, pcapngSPB: 8}[o.Uint32(blk)]
	return at == 0 || len(blk) < at+4 || o.Uint32(blk[at:]) <= 1<<20
}

// readPcapgo reads with pcapgo as Read used it; accepted means it read to
// io.EOF without an error or a panic.
func readPcapgo(b []byte) (out []fuzzPacket, accepted bool) {
	defer func() {
		if recover() != nil {
			accepted = false
		}
	}()
	var src interface {
		ZeroCopyReadPacketData() ([]byte, gopacket.CaptureInfo, error)
	}
	var link func(gopacket.CaptureInfo) layers.LinkType
	if len(b) >= 4 && bytes.Equal(b[:4], []byte{0x0a, 0x0d, 0x0d, 0x0a}) {
		r, err := pcapgo.NewNgReader(bytes.NewReader(b), pcapgo.NgReaderOptions{WantMixedLinkType: true})
		if err != nil {
			return nil, false
		}
		src, link = r, func(ci gopacket.CaptureInfo) layers.LinkType { return ci.AncillaryData[0].(layers.LinkType) }
	} else {
		r, err := pcapgo.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, false
		}
		r.SetSnaplen(maxPacket)
		src, link = r, func(gopacket.CaptureInfo) layers.LinkType { return r.LinkType() }
	}
	for {
		data, ci, err := src.ZeroCopyReadPacketData()
		if err == io.EOF {
			return out, true
		}
		if err != nil {
			return out, false
		}
		out = append(out, fuzzPacket{data: bytes.Clone(data), ts: ci.Timestamp, link: uint8(link(ci))})
	}
}

// fuzzSeeds are small captures of every block and header kind.
func fuzzSeeds(testing.TB) [][]byte {
	frame := udpFrame(1, "seed")
	g := &ngBuild{order: binary.LittleEndian}
	g.shb(1, 1, []byte("c"))
	g.idb(LinkTypeEthernet, 1500)
	g.idb(LinkTypeRaw, 0, 9, []byte{0x80 | 10}, 14, make([]byte, 8))
	g.idb(LinkTypeLinuxSLL2, 0, 9, []byte{0})
	g.epb(0, 12345, frame)
	g.epb(1, 3, frame[14:])
	g.epb(2, 5, sll2(frame))
	g.spb(uint32(len(frame)), frame)
	g.opb(1, 7, frame[14:])
	g.block(pcapngDSB, []byte("TLSK"))
	ng := g.b
	be := &ngBuild{order: binary.BigEndian}
	be.shb(1)
	be.idb(LinkTypeEthernet, 0, 9, []byte{9})
	be.epb(0, 1<<40, frame)
	le := binary.LittleEndian
	pcap := append(classicHeader(le, 0xa1b2c3d4, 1), classicRecord(le, 1, 999999, frame, len(frame))...)
	pcapBE := append(classicHeader(binary.BigEndian, 0xa1b23c4d, 276), classicRecord(binary.BigEndian, 1, 7, sll2(frame), 80)...)
	return [][]byte{ng, append(bytes.Clone(ng), be.b...), pcap, pcapBE}
}
