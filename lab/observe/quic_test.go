package observe

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/echlab/echlab/internal/quicinitial"
	"github.com/echlab/echlab/lab/capture"
	"github.com/quic-go/quic-go"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestQUICInitialFromQuicGo records a real quic-go handshake over a
// recorded UDP socket and reads the ClientHello out of the decrypted
// Initial packets.
func TestQUICInitialFromQuicGo(t *testing.T) {
	for _, v := range []quic.Version{quic.Version1, quic.Version2} {
		t.Run(v.String(), func(t *testing.T) { testQUICFromQuicGo(t, v) })
	}
}

func testQUICFromQuicGo(t *testing.T, v quic.Version) {
	l := newLabTLS(t)
	rec := capture.NewRecorder()
	quicExchange(t, rec, l, "doq.lab.test", "doq", v)
	rep := compareFile(t, writeCapture(t, rec), CompareOptions{})
	if len(rep.Flows) != 1 {
		t.Fatalf("got %d flows: %+v", len(rep.Flows), rep.Flows)
	}
	f := rep.Flows[0]
	if f.Transport != TransportQUIC || f.SNI != "doq.lab.test" || len(f.ALPN) != 1 || f.ALPN[0] != "doq" || f.Service != "doq" {
		t.Fatalf("QUIC flow: transport %s SNI %q ALPN %v service %s warnings %v", f.Transport, f.SNI, f.ALPN, f.Service, f.Warnings)
	}
	if want := map[quic.Version]string{quic.Version1: "v1", quic.Version2: "v2"}[v]; f.QUICVersion != want {
		t.Errorf("QUIC version %q, want %q", f.QUICVersion, want)
	}
	if !bytes.HasPrefix([]byte(f.JA4), []byte("q13d")) {
		t.Errorf("JA4 %s does not start with q13d", f.JA4)
	}
	if f.ServerVersion != 0x0304 || f.ServerCipher == 0 {
		t.Errorf("ServerHello from the server's Initial: version %#x cipher %#x", f.ServerVersion, f.ServerCipher)
	}
}

// TestQUICInitialRoundTrip protects an Initial packet with the client keys
// (as a client would), splitting its CRYPTO data over two coalesced
// packets in reverse order, and reads it back.
func TestQUICInitialRoundTrip(t *testing.T) {
	for _, version := range []uint32{QUICv1, QUICv2} {
		dcid := unhex(t, "0001020304050607")
		msg := append([]byte{1, 0, 0, 6}, []byte("hello!")...)
		p1 := quicinitial.Protect(version, dcid, dcid, 0, append([]byte{6, 5, 5}, msg[5:]...))
		p2 := quicinitial.Protect(version, dcid, dcid, 1, append([]byte{6, 0, 5}, msg[:5]...))
		var q quicConn
		q.addDatagram(true, append(p1, p2...))
		if got := assembleCrypto(q.client.crypto); !bytes.Equal(got, msg) || len(q.warnings) > 0 {
			t.Errorf("version %#x: crypto %x, warnings %v", version, got, q.warnings)
		}
	}
}
