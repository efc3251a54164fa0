package observe

import (
	"bytes"
	"errors"
	"flag"
	"math/rand"
	"net/netip"
	"os"
	"testing"

	"github.com/echlab/echlab/lab/capture"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

var update = flag.Bool("update", false, "rewrite lab/observe/testdata captures")

// goldenCapture is a small synthesized capture with an ECH connection and
// a plain one (regenerate with go test ./lab/observe -run TestGoldenCapture -update).
const goldenCapture = "testdata/ech-tls.pcapng"

func TestGoldenCapture(t *testing.T) {
	if *update {
		_, path := recordTLSFlows(t)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(goldenCapture, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rep := compareFile(t, goldenCapture, CompareOptions{})
	if len(rep.Flows) != 2 || rep.Flows[0].SNI != "public.lab.test" || rep.Flows[0].ECH != ECHOuter || rep.Flows[1].SNI != "plain.lab.test" {
		t.Fatalf("golden capture: %+v", rep.Flows)
	}
}

// TestLinkTypes rewrites the golden capture's frames as classic pcap with
// every link layer Compare reads, in both byte orders where pcapgo allows.
func TestLinkTypes(t *testing.T) {
	frames := readFrames(t, goldenCapture)
	conv := map[layers.LinkType]func([]byte) []byte{
		layers.LinkTypeEthernet: func(b []byte) []byte { return b },
		layers.LinkTypeRaw:      func(b []byte) []byte { return b[14:] },
		layers.LinkTypeNull:     func(b []byte) []byte { return append([]byte{2, 0, 0, 0}, b[14:]...) },
		layers.LinkTypeLinuxSLL: func(b []byte) []byte {
			return append([]byte{0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0}, b[14:]...)
		},
	}
	for lt, f := range conv {
		var buf bytes.Buffer
		w := pcapgo.NewWriter(&buf)
		if err := w.WriteFileHeader(65535, lt); err != nil {
			t.Fatal(err)
		}
		for _, fr := range frames {
			d := f(fr.data)
			ci := fr.ci
			ci.CaptureLength, ci.Length = len(d), len(d)
			if err := w.WritePacket(ci, d); err != nil {
				t.Fatal(err)
			}
		}
		rep, err := Compare(&buf, CompareOptions{})
		if err != nil {
			t.Fatalf("%v: %v", lt, err)
		}
		if rep.Format != "pcap" || len(rep.Flows) != 2 || rep.Flows[0].SNI != "public.lab.test" {
			t.Errorf("%v: format %s flows %+v", lt, rep.Format, rep.Flows)
		}
	}
}

// TestMalformedCaptures feeds every prefix of a valid capture, corrupted
// copies and garbage to Compare: each gives an error or warnings, never a
// panic.
func TestMalformedCaptures(t *testing.T) {
	valid, err := os.ReadFile(goldenCapture)
	if err != nil {
		t.Fatal(err)
	}
	step := 1
	if testing.Short() {
		step = 7
	}
	for n := 0; n < len(valid); n += step {
		rep, err := Compare(bytes.NewReader(valid[:n]), CompareOptions{})
		if err == nil && n < 28 {
			t.Errorf("prefix %d: no error", n)
		}
		if err == nil && n < len(valid) && len(rep.Warnings) == 0 && n%997 == 0 {
			t.Logf("prefix %d: %d flows, no capture warning", n, len(rep.Flows))
		}
	}
	if _, err := Compare(bytes.NewReader([]byte("GET / HTTP/1.1\r\n\r\n")), CompareOptions{}); !errors.Is(err, capture.ErrNotCapture) {
		t.Errorf("HTTP text: %v, want ErrNotCapture", err)
	}
	if _, err := Compare(bytes.NewReader(valid[:20]), CompareOptions{}); !errors.Is(err, capture.ErrTruncated) {
		t.Errorf("cut header: %v, want ErrTruncated", err)
	}
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 300; i++ {
		b := append([]byte(nil), valid...)
		for j := 0; j < 1+rng.Intn(20); j++ {
			b[rng.Intn(len(b))] = byte(rng.Intn(256))
		}
		Compare(bytes.NewReader(b), CompareOptions{})
		junk := make([]byte, rng.Intn(4000))
		rng.Read(junk)
		Compare(bytes.NewReader(junk), CompareOptions{})
		Compare(bytes.NewReader(append(valid[:4:4], junk...)), CompareOptions{})
	}
}

// TestTruncatedTail checks that a capture cut inside its last packet keeps
// the flows before the cut and says the file was cut.
func TestTruncatedTail(t *testing.T) {
	valid, err := os.ReadFile(goldenCapture)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Compare(bytes.NewReader(valid[:len(valid)-10]), CompareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Warnings) == 0 || len(rep.Flows) != 2 {
		t.Errorf("warnings %v, %d flows", rep.Warnings, len(rep.Flows))
	}
}

func TestGarbageTLSStream(t *testing.T) {
	// A TCP connection whose client sends bytes that are not TLS.
	var buf bytes.Buffer
	conns := []capture.ScriptConn{{TCP: true, Client: mustAP("127.0.0.1:40000"), Server: mustAP("127.0.0.1:8443")}}
	events := []capture.ScriptEvent{{Kind: capture.EventOpen}, {Kind: capture.EventData, FromClient: true, Data: []byte("\x16\x03\x01\x00\x05\x01\x00\x00\x09hello")}, {Kind: capture.EventClose, FromClient: true}}
	if err := capture.WriteScript(&buf, conns, events); err != nil {
		t.Fatal(err)
	}
	rep, err := Compare(&buf, CompareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Flows) != 1 || len(rep.Flows[0].Warnings) == 0 || rep.Flows[0].SNI != "" {
		t.Fatalf("flows %+v", rep.Flows)
	}
}

func mustAP(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
