package observe

import (
	"bytes"
	"crypto/tls"
	"errors"
	"slices"
	"testing"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/internal/labtest"
	"github.com/echlab/echlab/internal/quicinitial"
	"github.com/quic-go/quic-go"
)

// quicHandshake is one quic-go handshake on loopback: what the client sent
// and what crypto/tls in the server read from its ClientHello.
type quicHandshake struct {
	sent  [][]byte
	info  tls.ClientHelloInfo // the server's view (of the inner hello with ECH)
	state tls.ConnectionState // the client's
}

// runQUICHandshake runs a quic-go client with cfg against a quic-go server
// of the lab's TLS fixture (ECH keys included), with a Retry first when
// retry is set.
func runQUICHandshake(t testing.TB, l *labTLS, cfg *tls.Config, retry bool, versions ...quic.Version) quicHandshake {
	t.Helper()
	var hs quicHandshake
	infoSeen := make(chan tls.ClientHelloInfo, 1)
	srvConf := l.Server.Clone()
	srvConf.GetConfigForClient = func(chi *tls.ClientHelloInfo) (*tls.Config, error) {
		select {
		case infoSeen <- *chi:
		default:
		}
		return nil, nil
	}
	qc := &quic.Config{Versions: versions}
	addr := labtest.QUICServer(t, srvConf, qc, retry)
	sent, state, err := labtest.QUICDial(t, addr, cfg, qc)
	if err != nil {
		t.Fatalf("quic dial: %v", err)
	}
	hs.sent, hs.state, hs.info = sent, state, <-infoSeen
	return hs
}

// readQUICHello feeds datagrams to a fresh QUICHello until it has the
// ClientHello; it returns the message and how many datagrams it took.
func readQUICHello(t *testing.T, datagrams [][]byte) ([]byte, int) {
	t.Helper()
	var q QUICHello
	for i, d := range datagrams {
		msg, ok, err := q.Add(d)
		if errors.Is(err, ErrQUICHelloGaveUp) {
			t.Fatalf("datagram %d: %v", i, err)
		}
		if ok {
			if again, ok2, err := q.Add(datagrams[0]); !ok2 || err != nil || !bytes.Equal(again, msg) {
				t.Errorf("Add after the ClientHello: %d bytes, %v, %v", len(again), ok2, err)
			}
			return msg, i + 1
		}
	}
	t.Fatalf("no whole ClientHello in %d datagrams", len(datagrams))
	return nil, 0
}

// TestQUICHelloQuicGo reads the ClientHello of real quic-go clients (v1
// and v2): crypto/tls offers an X25519MLKEM768 key share, so the message
// spans two Initial packets in two datagrams. The oracle is crypto/tls in
// the quic-go server: the same SNI, ALPN and extension list.
func TestQUICHelloQuicGo(t *testing.T) {
	l := newLabTLS(t)
	for _, v := range []quic.Version{quic.Version1, quic.Version2} {
		t.Run(v.String(), func(t *testing.T) {
			hs := runQUICHandshake(t, l, l.Client("secret.lab.test", false), false, v)
			msg, n := readQUICHello(t, hs.sent)
			if n != 2 || len(msg) < 1200 {
				t.Errorf("a %d-byte ClientHello read after %d datagrams, want it to span 2", len(msg), n)
			}
			ch, err := ech.ParseClientHello(msg)
			if err != nil {
				t.Fatalf("the ClientHello read does not parse: %v", err)
			}
			var types []uint16
			for _, e := range ch.Extensions {
				types = append(types, e.Type)
			}
			if ch.ServerName != hs.info.ServerName || !slices.Equal(types, hs.info.Extensions) || !slices.Equal(ch.ALPN, hs.info.SupportedProtos) {
				t.Errorf("read SNI %q extensions %v ALPN %v; the server read %q %v %v",
					ch.ServerName, types, ch.ALPN, hs.info.ServerName, hs.info.Extensions, hs.info.SupportedProtos)
			}
			// The two datagrams coalesced into one, and in reverse order
			// when the second still has the first's DCID (when the
			// server's Initial came first, the second is sent to the
			// server's connection ID, under the first DCID's keys).
			h0, _ := parseLongHeader(hs.sent[0])
			h1, _ := parseLongHeader(hs.sent[1])
			if bytes.Equal(h0.DCID, h1.DCID) {
				if rev, n := readQUICHello(t, [][]byte{hs.sent[1], hs.sent[0]}); n != 2 || !bytes.Equal(rev, msg) {
					t.Errorf("in reverse order: %d bytes after %d datagrams", len(rev), n)
				}
			}
			if co, n := readQUICHello(t, [][]byte{append(bytes.Clone(hs.sent[0]), hs.sent[1]...)}); n != 1 || !bytes.Equal(co, msg) {
				t.Errorf("coalesced: %d bytes after %d datagrams", len(co), n)
			}
			var q QUICHello
			q.Add(hs.sent[0])
			if want := map[quic.Version]uint32{quic.Version1: QUICv1, quic.Version2: QUICv2}[v]; q.Version() != want {
				t.Errorf("Version() = %#x, want %#x", q.Version(), want)
			}
		})
	}
}

// TestQUICHelloECH: a quic-go client offering ECH; the outer ClientHello
// read from its Initials carries the public name and the
// encrypted_client_hello extension with the fixture's config id, and the
// server accepted ECH (it read the true name from the inner hello).
func TestQUICHelloECH(t *testing.T) {
	l := newLabTLS(t)
	hs := runQUICHandshake(t, l, l.Client("secret.lab.test", true), false)
	msg, _ := readQUICHello(t, hs.sent)
	ch, err := ech.ParseClientHello(msg)
	if err != nil {
		t.Fatal(err)
	}
	if ch.ServerName != "public.lab.test" || ch.ECH == nil || ch.ECH.Type != ech.ECHOuter || ch.ECH.ConfigID != 7 || len(ch.ECH.Payload) == 0 {
		t.Errorf("outer SNI %q ECH %+v", ch.ServerName, ch.ECH)
	}
	if !hs.state.ECHAccepted || hs.info.ServerName != "secret.lab.test" {
		t.Errorf("ECH accepted %v, the server read SNI %q", hs.state.ECHAccepted, hs.info.ServerName)
	}
}

// TestQUICHelloRetry: after the server's Retry the client sends its
// ClientHello again under a new DCID; a QUICHello that read its first
// datagram under the old one starts over with the new keys.
func TestQUICHelloRetry(t *testing.T) {
	l := newLabTLS(t)
	hs := runQUICHandshake(t, l, l.Client("secret.lab.test", false), true)
	first, err := parseLongHeader(hs.sent[0])
	if err != nil {
		t.Fatal(err)
	}
	r := slices.IndexFunc(hs.sent, func(d []byte) bool {
		h, err := parseLongHeader(d)
		return err == nil && !bytes.Equal(h.DCID, first.DCID)
	})
	if r < 1 {
		t.Fatalf("no datagram under a new DCID after the Retry in %d datagrams", len(hs.sent))
	}
	want, _ := readQUICHello(t, hs.sent[r:])
	msg, n := readQUICHello(t, append([][]byte{hs.sent[0]}, hs.sent[r:]...))
	ch, err := ech.ParseClientHello(msg)
	if n < 2 || err != nil || ch.ServerName != "secret.lab.test" || !bytes.Equal(msg, want) {
		t.Errorf("after %d datagrams: %v, SNI %q, the same as without the first: %v", n, err, ch.ServerName, bytes.Equal(msg, want))
	}
}

// TestQUICHelloLimits: what a QUICHello refuses to keep or read, and that
// giving up is final.
func TestQUICHelloLimits(t *testing.T) {
	dcid := unhex(t, "0001020304050607")
	crypto := func(pn int, off uint64, data []byte) []byte {
		frame := []byte{6, 0x80 | byte(off>>24), byte(off >> 16), byte(off >> 8), byte(off), 0x40 | byte(len(data)>>8), byte(len(data))}
		return quicinitial.Protect(QUICv1, dcid, dcid, pn, append(frame, data...))
	}
	header := func(typ byte, n int) []byte { return []byte{typ, byte(n >> 16), byte(n >> 8), byte(n)} }
	cases := []struct {
		name      string
		datagrams [][]byte
	}{
		{"CRYPTO past the cap", [][]byte{crypto(0, MaxQUICHelloBytes-2, []byte("abc"))}},
		{"a ClientHello longer than the cap", [][]byte{crypto(0, 0, header(1, MaxQUICHelloBytes))}},
		{"not a ClientHello", [][]byte{crypto(0, 0, header(2, 40))}},
		{"too many datagrams", slices.Repeat([][]byte{{0x40, 1, 2, 3}}, MaxQUICHelloDatagrams+1)},
		{"too much past a hole", func() (ds [][]byte) {
			for i := range 14 {
				ds = append(ds, crypto(i, uint64(100+i*10), bytes.Repeat([]byte{1}, 5000)))
			}
			return ds
		}()},
		{"too many pieces past a hole", func() [][]byte {
			var frames []byte
			for i := range quicinitial.MaxHelloChunks + 1 {
				off := 100 + 2*i
				frames = append(frames, 6, 0x40|byte(off>>8), byte(off), 1, 'x')
			}
			return [][]byte{quicinitial.Protect(QUICv1, dcid, dcid, 0, frames)}
		}()},
	}
	for _, c := range cases {
		var q QUICHello
		var err error
		for _, d := range c.datagrams {
			if _, _, err = q.Add(d); errors.Is(err, ErrQUICHelloGaveUp) {
				break
			}
		}
		if !errors.Is(err, ErrQUICHelloGaveUp) {
			t.Errorf("%s: %v, want ErrQUICHelloGaveUp", c.name, err)
			continue
		}
		if _, ok, err2 := q.Add(crypto(0, 0, header(1, 2))); ok || err2 != err {
			t.Errorf("%s: after giving up, Add gives %v %v", c.name, ok, err2)
		}
	}
	// A hole filled late; a short-header datagram is an error that is not
	// final; a duplicate changes nothing.
	var q QUICHello
	if _, ok, err := q.Add([]byte{0x40, 1, 2, 3}); ok || !errors.Is(err, ErrQUIC) || errors.Is(err, ErrQUICHelloGaveUp) {
		t.Errorf("short header: %v %v", ok, err)
	}
	for i, d := range [][]byte{crypto(1, 4, []byte("hello")), crypto(1, 4, []byte("hello"))} {
		if _, ok, err := q.Add(d); ok || err != nil {
			t.Errorf("datagram %d: %v %v", i, ok, err)
		}
	}
	if msg, ok, err := q.Add(crypto(2, 0, header(1, 5))); !ok || err != nil || string(msg[4:]) != "hello" {
		t.Errorf("hole filled: %q %v %v", msg, ok, err)
	}
}

// FuzzQUICHello: arbitrary datagrams never make a QUICHello panic or
// return a message that is not a ClientHello within the cap. The seeds
// are a quic-go client's two Initial datagrams (ECH offered), coalesced.
func FuzzQUICHello(f *testing.F) {
	l := newLabTLS(f)
	hs := runQUICHandshake(f, l, l.Client("secret.lab.test", true), false)
	f.Add(append(bytes.Clone(hs.sent[0]), hs.sent[1]...), len(hs.sent[0]))
	f.Add(hs.sent[0], 1200)
	f.Add([]byte{0xc0, 0, 0, 0, 1, 8, 0, 1, 2, 3, 4, 5, 6, 7, 0, 0, 0x41, 0}, 3)
	f.Fuzz(func(t *testing.T, b []byte, split int) {
		var q QUICHello
		cut := 0
		if len(b) > 0 {
			cut = (split%len(b) + len(b)) % len(b)
		}
		for _, d := range [][]byte{b[:cut], b[cut:], b} {
			msg, ok, _ := q.Add(d)
			if ok && (len(msg) < 4 || msg[0] != 1 || len(msg) > MaxQUICHelloBytes) {
				t.Fatalf("returned %x", msg)
			}
		}
	})
}

// BenchmarkQUICHello is the cost of reading a quic-go client's ClientHello
// from its two Initial datagrams: key derivation, two decryptions and the
// reassembly.
func BenchmarkQUICHello(b *testing.B) {
	l := newLabTLS(b)
	hs := runQUICHandshake(b, l, l.Client("secret.lab.test", true), false)
	for b.Loop() {
		var q QUICHello
		q.Add(hs.sent[0])
		if _, ok, err := q.Add(hs.sent[1]); !ok {
			b.Fatal(err)
		}
	}
}
