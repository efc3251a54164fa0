package observe

import (
	"bytes"
	"encoding/hex"
	"testing"

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

// TestInitialKeysRFC9001 checks the key derivation vector of RFC 9001
// Appendix A.1 and the header protection mask of Appendix A.2.
func TestInitialKeysRFC9001(t *testing.T) {
	dcid := unhex(t, "8394c8f03e515708")
	cs, ss := initialSecrets(QUICv1, dcid)
	check := func(name string, got []byte, want string) {
		t.Helper()
		if hex.EncodeToString(got) != want {
			t.Errorf("%s = %x, want %s", name, got, want)
		}
	}
	check("client_initial_secret", cs, "c00cf151ca5be075ed0ebfb5c80323c42d6b7db67881289af4008f1f6c357aea")
	check("server_initial_secret", ss, "3c199828fd139efd216c155ad844cc81fb82fa8d7446fa7d78be803acdda951b")
	ck, sk := newInitialKeys(QUICv1, cs), newInitialKeys(QUICv1, ss)
	check("client key", ck.key, "1f369613dd76d5467730efcbe3b1a22d")
	check("client iv", ck.iv, "fa044b2f42a3fd3b46fb255c")
	check("client hp", ck.hpKey, "9f50449e04a0e810283a1e9933adedd2")
	check("server key", sk.key, "cf3a5331653c364c88f0f379b6067e37")
	check("server iv", sk.iv, "0ac1493ca1905853b0bba03e")
	check("server hp", sk.hpKey, "c206b8d9b9f0f37644430b490eeaa314")
	var mask [16]byte
	ck.hp.Encrypt(mask[:], unhex(t, "d1b1c98dd7689fb8ec11d242b123dc9b"))
	check("A.2 header protection mask", mask[:5], "437b9aec36")
}

func TestDecodePacketNumber(t *testing.T) {
	// RFC 9000 Appendix A.3 example.
	if got := decodePacketNumber(0xa82f30ea, 0x9b32, 16); got != 0xa82f9b32 {
		t.Fatalf("decodePacketNumber = %#x, want 0xa82f9b32", got)
	}
}

func TestAssembleCryptoOutOfOrder(t *testing.T) {
	chunks := []cryptoChunk{{off: 6, data: []byte("world")}, {off: 0, data: []byte("hello ")}, {off: 3, data: []byte("lo wo")}}
	if got := assembleCrypto(chunks); !bytes.Equal(got, []byte("hello world")) {
		t.Fatalf("assembleCrypto = %q", got)
	}
	if got := assembleCrypto([]cryptoChunk{{off: 5, data: []byte("x")}}); len(got) != 0 {
		t.Fatalf("a hole at offset 0 gave %q", got)
	}
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
		cs, _ := initialSecrets(version, dcid)
		k := newInitialKeys(version, cs)
		msg := append([]byte{1, 0, 0, 6}, []byte("hello!")...)
		p1 := protectInitial(t, version, k, dcid, 0, append([]byte{6, 5, 5}, msg[5:]...))
		p2 := protectInitial(t, version, k, dcid, 1, append([]byte{6, 0, 5}, msg[:5]...))
		var q quicConn
		q.addDatagram(true, append(p1, p2...))
		if got := assembleCrypto(q.client.crypto); !bytes.Equal(got, msg) || len(q.warnings) > 0 {
			t.Errorf("version %#x: crypto %x, warnings %v", version, got, q.warnings)
		}
	}
}

// protectInitial builds a client Initial packet with a 2-byte packet number
// and applies packet and header protection (RFC 9001 §5).
func protectInitial(t *testing.T, version uint32, k *initialKeys, dcid []byte, pn int, frames []byte) []byte {
	t.Helper()
	frames = append(frames, make([]byte, 40)...) // PADDING, enough for the sample
	typ := byte(0)
	if version == QUICv2 {
		typ = 1
	}
	hdr := []byte{0xc0 | typ<<4 | 1, byte(version >> 24), byte(version >> 16), byte(version >> 8), byte(version), byte(len(dcid))}
	hdr = append(hdr, dcid...)
	length := 2 + len(frames) + 16
	hdr = append(hdr, 0, 0, 0x40|byte(length>>8), byte(length), byte(pn>>8), byte(pn))
	pnOff := len(hdr) - 2
	nonce := append([]byte(nil), k.iv...)
	nonce[11] ^= byte(pn)
	pkt := k.aead.Seal(append([]byte(nil), hdr...), nonce, frames, hdr)
	var mask [16]byte
	k.hp.Encrypt(mask[:], pkt[pnOff+4:pnOff+20])
	pkt[0] ^= mask[0] & 0x0f
	pkt[pnOff] ^= mask[1]
	pkt[pnOff+1] ^= mask[2]
	return pkt
}

func TestInitialFramesMalformed(t *testing.T) {
	for _, b := range [][]byte{{0x40}, {0x06, 0x00}, {0x06, 0x00, 0x05, 1}, {0x02, 0x00}, {0x02, 0, 0, 0x3f, 0}, {0x08}} {
		if _, err := parseInitialFrames(b); err == nil {
			t.Errorf("%x: no error", b)
		}
	}
	chunks, err := parseInitialFrames([]byte{0, 1, 0x06, 0x00, 0x02, 'h', 'i', 0x1c, 0, 0, 0})
	if err != nil || len(chunks) != 1 || string(chunks[0].data) != "hi" {
		t.Errorf("valid frames: %v %v", chunks, err)
	}
}
