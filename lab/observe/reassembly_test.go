package observe

import (
	"bytes"
	"io"
	"os"
	"testing"

	"github.com/echlab/echlab/lab/capture"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

type frame struct {
	ci   gopacket.CaptureInfo
	data []byte
}

func readFrames(t *testing.T, path string) []frame {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewNgReader(f, pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	var out []frame
	for {
		data, ci, err := r.ReadPacketData()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, frame{ci, data})
	}
}

func writeFrames(t *testing.T, frames []frame) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	w, err := pcapgo.NewNgWriter(&buf, layers.LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range frames {
		if err := w.WritePacket(f.ci, f.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return &buf
}

// clientSegments returns the indices of frames that carry TCP payload
// from the given client port.
func clientSegments(frames []frame, port uint16) []int {
	var idx []int
	for i, f := range frames {
		p, ok := capture.DecodeLink(capture.LinkTypeEthernet, f.data)
		if ok && p.Proto == 6 && p.Src.Port() == port && len(p.Payload) > 0 {
			idx = append(idx, i)
		}
	}
	return idx
}

// TestSplitClientHello checks that Go's default ClientHello (with an
// X25519MLKEM768 key share) spans several MSS-sized segments and is still
// dissected, also when the segments arrive out of order and retransmitted.
func TestSplitClientHello(t *testing.T) {
	_, path := recordTLSFlows(t)
	want := compareFile(t, path, CompareOptions{}).Flows[0]
	if want.RecordLen <= capture.MSS {
		t.Fatalf("ClientHello records are %d bytes, not more than one %d-byte segment", want.RecordLen, capture.MSS)
	}
	frames := readFrames(t, path)
	segs := clientSegments(frames, want.Client.Port())
	if p, _ := capture.DecodeLink(capture.LinkTypeEthernet, frames[segs[0]].data); len(segs) < 2 || len(p.Payload) != capture.MSS {
		t.Fatalf("ClientHello was not split: %d client segments", len(segs))
	}
	// Out of order: the second segment first. Retransmitted: the first
	// again later, and an overlapping tail copy of the first.
	frames[segs[0]], frames[segs[1]] = frames[segs[1]], frames[segs[0]]
	first := frames[segs[1]]
	overlap := frame{first.ci, append([]byte(nil), first.data...)}
	frames = append(frames, first, overlap)
	got := Compare2(t, writeFrames(t, frames))
	f := got.Flows[0]
	if f.SNI != want.SNI || f.JA4 != want.JA4 || f.ClientHelloLen != want.ClientHelloLen || f.ECH != want.ECH {
		t.Errorf("reordered capture: SNI %q JA4 %s len %d ECH %q; want %q %s %d %q (warnings %v)",
			f.SNI, f.JA4, f.ClientHelloLen, f.ECH, want.SNI, want.JA4, want.ClientHelloLen, want.ECH, f.Warnings)
	}
	if got.Synthesized {
		t.Error("a rewritten capture without the recorder's comment reads as synthesized")
	}
}

func Compare2(t *testing.T, r io.Reader) *Report {
	t.Helper()
	rep, err := Compare(r, CompareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestMissingSegment drops the first ClientHello segment: the flow must
// carry a warning, not a wrong SNI.
func TestMissingSegment(t *testing.T) {
	_, path := recordTLSFlows(t)
	frames := readFrames(t, path)
	rep := compareFile(t, path, CompareOptions{})
	segs := clientSegments(frames, rep.Flows[0].Client.Port())
	frames = append(frames[:segs[0]], frames[segs[0]+1:]...)
	f := Compare2(t, writeFrames(t, frames)).Flows[0]
	if f.SNI != "" || len(f.Warnings) == 0 {
		t.Errorf("SNI %q warnings %v", f.SNI, f.Warnings)
	}
}

func TestTCPHalfStream(t *testing.T) {
	var h tcpHalf
	h.add(&capture.Packet{Seq: 100, Flags: capture.TCPSYN})
	h.add(&capture.Packet{Seq: 107, Payload: []byte("world"), Flags: capture.TCPACK})
	h.add(&capture.Packet{Seq: 101, Payload: []byte("hello "), Flags: capture.TCPACK})
	h.add(&capture.Packet{Seq: 101, Payload: []byte("hel"), Flags: capture.TCPACK})
	s := h.stream()
	if string(s.data) != "hello world" || s.gap {
		t.Fatalf("stream %q gap %v", s.data, s.gap)
	}
	// Sequence numbers that wrap around 2^32.
	var w tcpHalf
	w.add(&capture.Packet{Seq: 0xfffffffe, Payload: []byte("ab")})
	w.add(&capture.Packet{Seq: 0, Payload: []byte("cd")})
	if s := w.stream(); string(s.data) != "abcd" {
		t.Fatalf("wrapped stream %q", s.data)
	}
}
