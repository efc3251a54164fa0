package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/internal/labtest"
	"github.com/echlab/echlab/internal/quicinitial"
	"github.com/quic-go/quic-go"
	"golang.org/x/net/ipv4"
)

// cryptoFrame is a CRYPTO frame (RFC 9000 §19.6) with 2-byte varints.
func cryptoFrame(off int, data []byte) []byte {
	return append([]byte{6, 0x40 | byte(off>>8), byte(off), 0x40 | byte(len(data)>>8), byte(len(data))}, data...)
}

// TestQUICHellosLaterDCID: the last Initial of a ClientHello may name the
// server's connection ID, as a client's Initials do once the server's
// first Initial reached it, under the keys of the first DCID. It completes
// the hello read from the same address, and only that one.
func TestQUICHellosLaterDCID(t *testing.T) {
	msg := clientHelloRecords(t, clientTLS(t, "secret.lab.test", configList(t, newKey(t, 5))))[5:]
	dcid, serverCID := bytes.Repeat([]byte{0xd1}, 8), []byte{1, 2, 3, 4}
	half := len(msg) / 2
	p1 := quicinitial.Protect(quicinitial.V1, dcid, dcid, 0, cryptoFrame(0, msg[:half]))
	p2 := quicinitial.Protect(quicinitial.V1, dcid, serverCID, 1, cryptoFrame(half, msg[half:]))
	client := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
	other := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40001}

	// Another address sends a whole ClientHello under the same DCID
	// first (Initial keys are public): it is not this connection's.
	forged := clientHelloRecords(t, clientTLS(t, "secret.lab.test", configList(t, newKey(t, 7))))[5:]
	key := helloKey{udpFrom(client), string(dcid)}

	q := newQUICHellos(time.Second, time.Now)
	q.add(quicinitial.Protect(quicinitial.V1, dcid, dcid, 0, cryptoFrame(0, forged)), other)
	q.add(p1, client)
	q.add(p2, other)
	if _, ok := q.take(key); ok {
		t.Fatal("a datagram from another address completed the hello")
	}
	q.add(p2, client)
	f, ok := q.take(key)
	if !ok || !f.hasECH || f.configID != 5 || f.suite != "HKDF-SHA256/AES-128-GCM" || f.sni != "public.lab.test" {
		t.Fatalf("facts %+v, %v", f, ok)
	}
	if n := q.size(); n != 1 {
		t.Fatalf("%d hellos held, want the other address's only", n)
	}
}

// TestQUICHellosBounded: Initials under ever new DCIDs that never complete
// a ClientHello fill the table up to maxQUICHellos and no further; they
// are dropped once older than the TTL. Datagrams that are not a client's
// Initial hold nothing.
func TestQUICHellosBounded(t *testing.T) {
	now := time.Unix(1e9, 0)
	q := newQUICHellos(time.Second, func() time.Time { return now })
	client := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
	part := cryptoFrame(0, []byte{1, 0, 4, 0, 3, 3}) // the start of a long ClientHello
	initial := func(i int) []byte {
		dcid := binary.BigEndian.AppendUint64(nil, uint64(i))
		return quicinitial.Protect(quicinitial.V1, dcid, dcid, 0, part)
	}
	for i := range maxQUICHellos + 50 {
		q.add(initial(i), client)
	}
	if n := q.size(); n != maxQUICHellos {
		t.Fatalf("%d hellos held, want the bound %d", n, maxQUICHellos)
	}
	now = now.Add(2 * time.Second)
	q.add(initial(maxQUICHellos+51), client)
	if n := q.size(); n != 1 {
		t.Fatalf("%d hellos held after the TTL, want the new one", n)
	}
	for _, b := range [][]byte{
		{0x40, 1, 2, 3},    // a short header
		{0xc0, 0, 0, 0, 1}, // a truncated long header
		quicinitial.Protect(quicinitial.V1, []byte{1, 2, 3, 4}, []byte{1, 2, 3, 4}, 0, part), // a DCID too short for a first Initial
		bytes.Repeat([]byte{0xff}, 1200), // not QUIC
	} {
		q.add(b, client)
	}
	if n := q.size(); n != 1 {
		t.Fatalf("%d hellos held after datagrams that are no client's first Initial", n)
	}
}

// TestHTTP3KeyOrderByConfigID: crypto/tls tries every key it is given, in
// order, and fails the handshake on a key whose private key does not
// parse. A server whose first key is such a key still accepts the ECH of a
// client on its second key over HTTP/3: the ClientHello read from the
// Initials names that key's config id, which goes first, and crypto/tls
// never reaches the broken one.
func TestHTTP3KeyOrderByConfigID(t *testing.T) {
	good, other := newKey(t, 1), newKey(t, 2)
	broken := NewStaticKeys(other)[0]
	broken.PrivateKey = []byte{1, 2, 3}
	keys := StaticKeys{broken, NewStaticKeys(good)[0]}
	logBuf := &syncBuffer{}
	s := startServer(t, Config{Keys: keys, HTTP3: true, Log: logBuf})
	cfg := clientTLS(t, "secret.lab.test", configList(t, good))
	cfg.NextProtos = nil
	resp, err := h3Client(t, s.UDPAddr(), cfg).Get("https://secret.lab.test/api/conn")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body) //nolint:errcheck
	resp.Body.Close()
	if !resp.TLS.ECHAccepted {
		t.Fatal("ECH not accepted")
	}
	if r := logBuf.waitRecords(t, 1)[0]; r.ECH != ECHAccepted || r.ConfigID == nil || *r.ConfigID != 1 {
		t.Errorf("record %+v", r)
	}
}

// FuzzQUICHellos feeds arbitrary datagrams, and real Initials of an ECH
// ClientHello cut at the fuzzer's point, to the HTTP/3 side's reader of
// client Initials: it never panics, holds at most maxQUICHellos hellos,
// and facts it gives come from a ClientHello that parsed.
func FuzzQUICHellos(f *testing.F) {
	msg := clientHelloRecords(f, clientTLS(f, "secret.lab.test", configList(f, newKey(f, 5))))[5:]
	dcid := bytes.Repeat([]byte{0xd1}, 8)
	f.Add([]byte{0xc0, 0, 0, 0, 1, 8}, uint16(100))
	f.Add(quicinitial.Protect(quicinitial.V1, dcid, dcid, 0, cryptoFrame(0, msg[:200])), uint16(200))
	f.Fuzz(func(t *testing.T, datagram []byte, cut uint16) {
		q := newQUICHellos(time.Second, time.Now)
		client := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
		q.add(datagram, client)
		n := min(int(cut), len(msg))
		q.add(quicinitial.Protect(quicinitial.V1, dcid, dcid, 0, cryptoFrame(0, msg[:n])), client)
		q.add(datagram, client)
		q.add(quicinitial.Protect(quicinitial.V1, dcid, []byte{1, 2, 3, 4}, 1, cryptoFrame(n, msg[n:])), client)
		if q.size() > maxQUICHellos {
			t.Fatalf("%d hellos held", q.size())
		}
		if f, ok := q.take(helloKey{udpFrom(client), string(dcid)}); ok && (f.configID != 5 || f.sni != "public.lab.test") {
			t.Fatalf("facts %+v from the real ClientHello", f)
		}
	})
}

// TestQUICRecordFacts: what the ClientHello read from the Initials makes
// of a QUIC record, given what the callbacks proved.
func TestQUICRecordFacts(t *testing.T) {
	ech := func(id uint8) *helloFacts {
		return &helloFacts{sni: "public.lab.test", hasECH: true, configID: id, suite: "HKDF-SHA256/AES-128-GCM"}
	}
	withKeys := &Server{cfg: Config{Keys: NewStaticKeys(newKey(t, 1))}}
	withKeys.known.add([]uint8{1})
	noKeys := &Server{}
	for _, tc := range []struct {
		name string
		s    *Server
		ech  string // from the callbacks
		f    *helloFacts
		want string
		id   bool // config_id and suite filled
	}{
		{"not read", withKeys, ECHRejected, nil, ECHRejected, false},
		{"held id, rejected", withKeys, ECHRejected, ech(1), ECHRejected, true},
		{"never held id", withKeys, ECHRejected, ech(9), ECHGrease, true},
		{"accepted", withKeys, ECHAccepted, ech(9), ECHAccepted, true},
		{"failed before the callbacks", withKeys, ECHNone, ech(1), ECHUnknown, true},
		{"failed, unknown", withKeys, ECHUnknown, ech(9), ECHUnknown, true},
		{"server without keys", noKeys, ECHNone, ech(1), ECHGrease, true},
		{"no ECH", withKeys, ECHNone, &helloFacts{sni: "plain.lab.test"}, ECHNone, false},
		{"inner in the clear", withKeys, ECHAccepted, &helloFacts{sni: "secret.lab.test", innerECH: true}, ECHInnerInClear, false},
	} {
		rec := &ConnRecord{ECH: tc.ech, OuterSNI: "callbacks", InnerSNI: "inner"}
		tc.s.withHelloFacts(rec, tc.f)
		if rec.ECH != tc.want || (rec.ConfigID != nil) != tc.id || (rec.HPKESuite != "") != tc.id {
			t.Errorf("%s: %+v", tc.name, rec)
		}
		if tc.f != nil && rec.OuterSNI != tc.f.sni {
			t.Errorf("%s: outer SNI %q, want the ClientHello's %q", tc.name, rec.OuterSNI, tc.f.sni)
		}
		if tc.want == ECHInnerInClear && rec.InnerSNI != "" {
			t.Errorf("%s: inner SNI %q kept", tc.name, rec.InnerSNI)
		}
	}
}

// BenchmarkQUICHellos: the HTTP/3 side's cost of reading one ClientHello
// (an ECH one, in two client Initials as quic-go sends it) from the
// datagrams it receives, on the path of every new QUIC connection.
func BenchmarkQUICHellos(b *testing.B) {
	msg := clientHelloRecords(b, clientTLS(b, "secret.lab.test", configList(b, newKey(b, 5))))[5:]
	type pair struct{ dcid, p1, p2 []byte }
	pairs := make([]pair, 64)
	for i := range pairs {
		dcid := binary.BigEndian.AppendUint64(nil, uint64(i)+1)
		pairs[i] = pair{dcid, quicinitial.Protect(quicinitial.V1, dcid, dcid, 0, cryptoFrame(0, msg[:1000])),
			quicinitial.Protect(quicinitial.V1, dcid, dcid, 1, cryptoFrame(1000, msg[1000:]))}
	}
	q := newQUICHellos(time.Second, time.Now)
	client := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		p := pairs[i%len(pairs)]
		q.add(p.p1, client)
		q.add(p.p2, client)
		if _, ok := q.take(helloKey{udpFrom(client), string(p.dcid)}); !ok {
			b.Fatal("no hello")
		}
	}
}

// TestHTTP3ConcurrentRecords: QUIC connections handshaking at once, half
// on each of the server's two keys, each get a record with the config id
// their own ClientHello named (run it with -race: the read loop fills the
// table while the handshakes take from it).
func TestHTTP3ConcurrentRecords(t *testing.T) {
	k1, k2 := newKey(t, 1), newKey(t, 2)
	logBuf := &syncBuffer{}
	s := startServer(t, Config{Keys: NewStaticKeys(k1, k2), HTTP3: true, Log: logBuf})
	const n = 16
	local := make([]string, n)
	errs := make(chan error, n)
	for i := range n {
		go func() {
			k := []*ech.Key{k1, k2}[i%2]
			cfg := clientTLS(t, "secret.lab.test", configList(t, k))
			cfg.NextProtos = []string{"h3"}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := quic.DialAddr(ctx, s.UDPAddr(), cfg, &quic.Config{})
			if err == nil {
				local[i] = strconv.Itoa(c.LocalAddr().(*net.UDPAddr).Port) // the socket is unbound: [::]
				if !c.ConnectionState().TLS.ECHAccepted {
					err = fmt.Errorf("client %d: ECH not accepted", i)
				}
				c.CloseWithError(0, "")
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	byAddr := map[string]ConnRecord{}
	for _, r := range logBuf.waitRecords(t, n) {
		_, port, _ := net.SplitHostPort(r.ClientAddr)
		if old, dup := byAddr[port]; dup {
			t.Errorf("two records for port %s:\n%+v\n%+v", port, old, r)
		}
		byAddr[port] = r
	}
	for i, a := range local {
		r, ok := byAddr[a]
		if !ok {
			t.Errorf("client %d (port %s): no record among %d", i, a, len(byAddr))
			continue
		}
		if want := uint8(i%2 + 1); !ok || r.ECH != ECHAccepted || r.ConfigID == nil || *r.ConfigID != want {
			t.Errorf("client %d (%s, config id %d): record %+v", i, a, want, r)
		}
	}
}

// TestHelloUDPConnReads: both read paths of the HTTP/3 socket, quic-go's
// batched one (ReadBatch) and its plain one (ReadFrom, where it does not
// batch), hand what they read to the hellos and return it unchanged.
func TestHelloUDPConnReads(t *testing.T) {
	msg := clientHelloRecords(t, clientTLS(t, "secret.lab.test", configList(t, newKey(t, 5))))[5:]
	for _, batch := range []bool{true, false} {
		udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer udp.Close()
		q := newQUICHellos(time.Second, time.Now)
		c := newHelloUDPConn(udp, q)
		sender, err := net.DialUDP("udp", nil, udp.LocalAddr().(*net.UDPAddr))
		if err != nil {
			t.Fatal(err)
		}
		defer sender.Close()
		dcid := bytes.Repeat([]byte{0xd2}, 8)
		sent := quicinitial.Protect(quicinitial.V1, dcid, dcid, 0, cryptoFrame(0, msg))
		if _, err := sender.Write(sent); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4096)
		var got []byte
		if batch {
			ms := []ipv4.Message{{Buffers: [][]byte{buf}}}
			n, err := c.ReadBatch(ms, 0)
			if err != nil || n != 1 {
				t.Fatalf("ReadBatch: %d, %v", n, err)
			}
			got = buf[:ms[0].N]
		} else {
			n, _, err := c.ReadFrom(buf)
			if err != nil {
				t.Fatal(err)
			}
			got = buf[:n]
		}
		if !bytes.Equal(got, sent) {
			t.Fatalf("batch %v: the datagram read differs from the one sent", batch)
		}
		f, ok := q.take(helloKey{udpFrom(sender.LocalAddr()), string(dcid)})
		if !ok || f.configID != 5 {
			t.Fatalf("batch %v: facts %+v, %v", batch, f, ok)
		}
	}
}

// countingConn counts which read path quic-go takes on a helloUDPConn.
type countingConn struct {
	*helloUDPConn
	batches, plain atomic.Int64
}

func (c *countingConn) ReadBatch(ms []ipv4.Message, flags int) (int, error) {
	c.batches.Add(1)
	return c.helloUDPConn.ReadBatch(ms, flags)
}

func (c *countingConn) ReadFrom(b []byte) (int, net.Addr, error) {
	c.plain.Add(1)
	return c.helloUDPConn.ReadFrom(b)
}

// TestHelloUDPConnKeepsBatching: quic-go reads a socket shaped like the
// HTTP/3 side's (a *net.UDPConn with a ReadBatch method) in batches, as it
// reads a bare *net.UDPConn on Linux, never through ReadFrom; and the
// ClientHello of a real quic-go client is read on the way.
func TestHelloUDPConnKeepsBatching(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("quic-go reads in batches on Linux")
	}
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	q := newQUICHellos(time.Second, time.Now)
	c := &countingConn{helloUDPConn: newHelloUDPConn(udp, q)}
	l := labtest.NewTLS(t)
	tr := &quic.Transport{Conn: c}
	t.Cleanup(func() { tr.Close(); udp.Close() })
	conf := l.Server.Clone()
	conf.NextProtos = []string{"doq"}
	ln, err := tr.Listen(conf, nil)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			if _, err := ln.Accept(context.Background()); err != nil {
				return
			}
		}
	}()
	if _, st, err := labtest.QUICDial(t, udp.LocalAddr(), l.Client("secret.lab.test", true, "doq"), nil); err != nil || !st.ECHAccepted {
		t.Fatalf("dial: %v, ECH accepted %v", err, st.ECHAccepted)
	}
	if c.batches.Load() == 0 || c.plain.Load() != 0 {
		t.Fatalf("quic-go read %d batches and %d single datagrams", c.batches.Load(), c.plain.Load())
	}
	if n := q.size(); n != 1 {
		t.Fatalf("%d hellos read from the client's Initials, want 1", n)
	}
}
