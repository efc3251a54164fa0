package observe

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/echlab/echlab/lab/capture"
)

// recordClosedTLS records one ECH connection followed by appBytes of
// application data records from the server, with both ends' FINs (the
// recorder wraps the server's end, so missing FINs are added), and
// returns its capture.
func recordClosedTLS(t *testing.T, appBytes int) []byte {
	t.Helper()
	l := newLabTLS(t)
	rec := capture.NewRecorder()
	addr := serveTLS(t, rec, l.Server)
	dialTLS(t, addr, l.Client("secret.lab.test", true, "h2"))
	conns, events := rec.Script()
	var out []capture.ScriptEvent
	var closes []capture.ScriptEvent
	clientClosed, serverClosed := false, false
	for _, e := range events {
		if e.Kind == capture.EventClose {
			closes = append(closes, e)
			clientClosed = clientClosed || e.FromClient
			serverClosed = serverClosed || !e.FromClient
			continue
		}
		out = append(out, e)
	}
	ts := out[len(out)-1].TS
	for sent := 0; sent < appBytes; sent += 16 << 10 {
		n := min(16<<10, appBytes-sent)
		rec := make([]byte, n)
		rec[0], rec[1], rec[2], rec[3], rec[4] = 23, 3, 3, byte((n-5)>>8), byte(n-5)
		out = append(out, capture.ScriptEvent{TS: ts, Kind: capture.EventData, Conn: 0, Data: rec})
	}
	// The recorder may not have seen the ends' closes yet when Script
	// runs (its relay records them after dialTLS returns): add the
	// missing FINs, so that the capture always shows both.
	if !clientClosed {
		closes = append(closes, capture.ScriptEvent{TS: ts, Kind: capture.EventClose, Conn: 0, FromClient: true})
	}
	if !serverClosed {
		closes = append(closes, capture.ScriptEvent{TS: ts, Kind: capture.EventClose, Conn: 0})
	}
	var buf bytes.Buffer
	if err := capture.WriteScript(&buf, conns, append(out, closes...)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestHandshakeOnlyKept: of a connection carrying 200 KB of application
// data after its handshake, each direction keeps only the handshake's
// bytes (and the first application record), a handful of segments, while
// still knowing the whole stream's length; once both FINs are in, the
// connection is finished (its flow built, its buffers dropped) and reads
// as the whole capture does.
func TestHandshakeOnlyKept(t *testing.T) {
	data := recordClosedTLS(t, 200<<10)
	tab := &connTable{conns: map[connKey]*conn{}}
	var peakKept, peakSegs int
	_, err := capture.Read(bytes.NewReader(data), func(p *capture.Packet) {
		tab.add(p)
		for _, c := range tab.conns {
			for _, h := range c.halves {
				if h == nil {
					continue
				}
				peakKept, peakSegs = max(peakKept, h.kept), max(peakSegs, len(h.segs))
				if h.bytes > 100<<10 && !h.handshakeDone {
					t.Fatalf("%d bytes in and the handshake is not done", h.bytes)
				}
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if peakKept > 20<<10 || peakSegs > 16 {
		t.Errorf("a direction kept up to %d bytes in %d segments; want the handshake only", peakKept, peakSegs)
	}
	if len(tab.order) != 1 || !tab.order[0].finished || tab.order[0].halves != [2]*tcpHalf{} || tab.order[0].done == nil {
		t.Fatalf("the connection is not finished after both FINs: %+v", tab.order[0])
	}
	f := tab.order[0].done
	if f.SNI != PublicName || f.ECH != ECHOuter || f.ServerCipher == 0 || len(f.Warnings) != 0 {
		t.Errorf("finished flow: %+v", f)
	}
}

// TestHoleAfterHandshake: a segment lost in the application data (past
// the bytes kept) is still reported where it is, as when every byte was
// kept.
func TestHoleAfterHandshake(t *testing.T) {
	data := recordClosedTLS(t, 100<<10)
	frames := readFrames(t, writeTemp(t, data))
	// The server's 20th data segment, and its offset in the server's stream.
	var server string
	var drop, seen int
	var off uint32
	for i, f := range frames {
		p, ok := capture.DecodeLink(capture.LinkTypeEthernet, f.data)
		if !ok || p.Proto != 6 {
			continue
		}
		if p.Flags&(capture.TCPSYN|capture.TCPACK) == capture.TCPSYN|capture.TCPACK {
			server, off = p.Src.String(), p.Seq+1
		}
		if p.Src.String() == server && len(p.Payload) > 0 {
			if seen++; seen == 20 {
				drop, off = i, p.Seq-off
				break
			}
		}
	}
	if seen != 20 {
		t.Fatalf("only %d server data segments", seen)
	}
	frames = append(frames[:drop], frames[drop+1:]...)
	rep := Compare2(t, writeFrames(t, frames))
	f := rep.Flows[0]
	want := fmt.Sprintf("tcp: %d bytes missing at stream offset %d", capture.MSS, off)
	if f.SNI != PublicName || len(f.Warnings) != 1 || f.Warnings[0] != want {
		t.Fatalf("SNI %q warnings %q; want %q", f.SNI, f.Warnings, want)
	}
}

// TestLateSegmentAfterFIN: the ClientHello's first segment arrives only
// after both FINs (a late retransmission): the connection must not be
// finished while its stream has a hole, so the hello is still read.
func TestLateSegmentAfterFIN(t *testing.T) {
	data := recordClosedTLS(t, 0)
	frames := readFrames(t, writeTemp(t, data))
	rep := Compare2(t, bytes.NewReader(data))
	segs := clientSegments(frames, rep.Flows[0].Client.Port())
	late := frames[segs[0]]
	frames = append(append(frames[:segs[0]:segs[0]], frames[segs[0]+1:]...), late)
	f := Compare2(t, writeFrames(t, frames)).Flows[0]
	if f.SNI != PublicName || f.ECH != ECHOuter || len(f.Warnings) != 0 {
		t.Fatalf("SNI %q ECH %q warnings %v", f.SNI, f.ECH, f.Warnings)
	}
}

// TestLongStreamKeptBounded: a stream that is not TLS keeps at most
// maxKept bytes and follows the sequence numbers to maxStream; so does a
// TLS stream of handshake records that never ends.
func TestLongStreamKeptBounded(t *testing.T) {
	httpStream := bytes.Repeat([]byte("GET / HTTP/1.1\r\n"), 2<<20/16)
	var tlsStream []byte
	for len(tlsStream) < 2<<20 {
		tlsStream = append(tlsStream, 22, 3, 3, 0x40, 0)
		tlsStream = append(tlsStream, make([]byte, 1<<14)...)
	}
	for name, b := range map[string][]byte{"http": httpStream, "tls without end": tlsStream} {
		var h tcpHalf
		h.add(&capture.Packet{Seq: 1000, Flags: capture.TCPSYN})
		for off := 0; off < len(b); off += capture.MSS {
			h.add(&capture.Packet{Seq: 1001 + uint32(off), Payload: b[off:min(len(b), off+capture.MSS)], Flags: capture.TCPACK})
		}
		s := h.stream()
		if h.kept > maxKept+capture.MSS || h.kept < maxKept || len(s.data) != h.kept || !bytes.Equal(s.data, b[:h.kept]) ||
			s.length != maxStream || s.gap || len(h.segs) > maxKept/capture.MSS+3 || h.handshakeDone {
			t.Errorf("%s: kept %d, %d segments, stream %d bytes of %d, gap %v, handshake done %v", name, h.kept, len(h.segs), len(s.data), s.length, s.gap, h.handshakeDone)
		}
	}
}

// writeTemp writes data to a file in a temporary directory.
func writeTemp(t *testing.T, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "capture.pcapng")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
