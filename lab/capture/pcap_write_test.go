package capture

import (
	"bytes"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// pcapgoRewrite writes the packets of a pcapng again with pcapgo's
// NgWriter and the section and interface options ours writes.
func pcapgoRewrite(t *testing.T, ng []byte, sec pcapgo.NgSectionInfo, intf pcapgo.NgInterface) []byte {
	t.Helper()
	r, err := pcapgo.NewNgReader(bytes.NewReader(ng), pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	w, err := pcapgo.NewNgWriterInterface(&out, intf, pcapgo.NgWriterOptions{SectionInfo: sec})
	if err != nil {
		t.Fatal(err)
	}
	for {
		data, ci, err := r.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ci.AncillaryData, ci.InterfaceIndex = nil, 0
		if err := w.WritePacket(ci, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestSynthCaptureBytesAsPcapgo: a synthesized capture written by our
// pcapng writer is byte for byte what gopacket's pcapgo.NgWriter writes
// for the same section, interface and packets (it wrote these captures
// before), so tools that read the old files read the new ones alike.
func TestSynthCaptureBytesAsPcapgo(t *testing.T) {
	ours := streamCapture(t)
	theirs := pcapgoRewrite(t, ours,
		pcapgo.NgSectionInfo{Hardware: runtime.GOARCH, OS: runtime.GOOS, Application: "echlab", Comment: SynthComment},
		pcapgo.NgInterface{Name: "lo", Description: "echlab recorder", OS: runtime.GOOS,
			LinkType: layers.LinkTypeEthernet, TimestampResolution: 9, SnapLength: maxPacket})
	if !bytes.Equal(ours, theirs) {
		t.Fatalf("our synthesized capture (%d bytes) differs from pcapgo's (%d bytes) at byte %d", len(ours), len(theirs), firstDiff(ours, theirs))
	}
}

// TestNgWriterBytesAsPcapgo writes packets of every length modulo 4 (the
// padding), an empty one, and timestamps before 1970 and with odd
// nanoseconds, with every option the live capture sets (a filter, and
// strings of each length modulo 4), through both writers.
func TestNgWriterBytesAsPcapgo(t *testing.T) {
	sec := ngSection{Hardware: "amd", OS: "linux", Application: "echlab", Comment: LiveComment + " on lo"}
	// Ethernet: pcapgo keeps link types in a byte, and would write
	// LINKTYPE_LINUX_SLL2 (276) as 20 (TestLinkTypeSLL2 checks ours).
	intf := ngInterfaceDesc{Name: "eth0", OS: "os", Link: LinkTypeEthernet, SnapLen: 65535, Filter: "port 443 or port 53"}
	var ours, theirs bytes.Buffer
	w, err := newNgWriter(&ours, sec, intf)
	if err != nil {
		t.Fatal(err)
	}
	gw, err := pcapgo.NewNgWriterInterface(&theirs,
		pcapgo.NgInterface{Name: intf.Name, OS: intf.OS, LinkType: layers.LinkType(intf.Link), SnapLength: intf.SnapLen, Filter: intf.Filter},
		pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{Hardware: sec.Hardware, OS: sec.OS, Application: sec.Application, Comment: sec.Comment}})
	if err != nil {
		t.Fatal(err)
	}
	stamps := []time.Time{time.Unix(1700000000, 123456789), time.Unix(-5, 7), time.Unix(0, 0), time.Unix(4102444800, 999999999)}
	for n := range 70 {
		data := bytes.Repeat([]byte{byte(n)}, n)
		ts := stamps[n%len(stamps)]
		if err := w.writePacket(ts, data); err != nil {
			t.Fatal(err)
		}
		if err := gw.WritePacket(gopacket.CaptureInfo{Timestamp: ts, CaptureLength: n, Length: n}, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := gw.Flush(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ours.Bytes(), theirs.Bytes()) {
		t.Fatalf("ours (%d bytes) differs from pcapgo's (%d bytes) at byte %d", ours.Len(), theirs.Len(), firstDiff(ours.Bytes(), theirs.Bytes()))
	}
}

// TestNgWriterFlushes: nothing reaches w before Flush but what the
// header's and a packet's blocks fill (the buffer is pcapgo's 4 KiB), and
// everything after.
func TestNgWriterFlushes(t *testing.T) {
	var out bytes.Buffer
	w, err := newNgWriter(&out, ngSection{}, ngInterfaceDesc{Link: LinkTypeEthernet})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.writePacket(time.Unix(1, 0), []byte("abc")); err != nil {
		t.Fatal(err)
	}
	if out.Len() != 0 {
		t.Fatalf("%d bytes written before Flush", out.Len())
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	var got []Packet
	meta, err := Read(&out, func(p *Packet) { got = append(got, *p) })
	if err != nil || meta.Packets != 1 || meta.Undecodable != 1 {
		t.Fatalf("%+v, %v", meta, err)
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
