package server

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"github.com/echlab/echlab/ech"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t testing.TB) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if server, err = ln.Accept(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	deadline := time.Now().Add(10 * time.Second)
	client.SetDeadline(deadline) //nolint:errcheck
	server.SetDeadline(deadline) //nolint:errcheck
	return client, server
}

// TestOpenConnLetsCryptoTLSConfirmECH: a crypto/tls server holding no ECH
// key at all completes an ECH handshake that the client sees accepted,
// with and without HelloRetryRequest, when it reads through openConn:
// openConn opened the ClientHelloOuter (and the second one after the
// HelloRetryRequest) and crypto/tls confirmed ECH on the inner.
func TestOpenConnLetsCryptoTLSConfirmECH(t *testing.T) {
	certs, err := issueCerts(testCA(t), "public.lab.test", []string{"secret.lab.test"})
	if err != nil {
		t.Fatal(err)
	}
	k := newKey(t, 21)
	for _, hrr := range []bool{false, true} {
		cc, sc := tcpPair(t)
		oc := newOpenConn(sc, tlsKEMKeys{ech.KeyList{k}})
		scfg := &tls.Config{MinVersion: tls.VersionTLS13, GetCertificate: certs.get}
		if hrr {
			scfg.CurvePreferences = []tls.CurveID{tls.CurveP256}
		}
		type result struct {
			cs  tls.ConnectionState
			err error
		}
		done := make(chan result, 1)
		go func() {
			s := tls.Server(oc, scfg)
			err := s.Handshake()
			done <- result{s.ConnectionState(), err}
		}()
		c := tls.Client(cc, clientTLS(t, "secret.lab.test", configList(t, k)))
		cerr := c.Handshake()
		res := <-done
		if cerr != nil || res.err != nil {
			t.Fatalf("hrr=%v: client %v, server %v", hrr, cerr, res.err)
		}
		cs := c.ConnectionState()
		if !cs.ECHAccepted || cs.HelloRetryRequest != hrr || res.cs.ServerName != "secret.lab.test" {
			t.Errorf("hrr=%v: client ECHAccepted=%v HRR=%v, server saw SNI %q", hrr, cs.ECHAccepted, cs.HelloRetryRequest, res.cs.ServerName)
		}
		if o := oc.accepted(); o == nil || o.Inner.ServerName != "secret.lab.test" || o.ConfigID != 21 {
			t.Errorf("hrr=%v: accepted() = %+v", hrr, o)
		}
		c.Close()
	}
}

// TestOpenConnPassesTheRestThrough: everything openConn does not open
// reaches the reader byte for byte as the client sent it, and bytes after
// an opened ClientHello follow its inner.
func TestOpenConnPassesTheRestThrough(t *testing.T) {
	k, other := newKey(t, 31), newKey(t, 32)
	keys := tlsKEMKeys{ech.KeyList{k}}
	tail := []byte("\x17\x03\x03\x00\x01x") // what came next in the same write
	cases := []struct {
		name string
		sent []byte
	}{
		{"no ECH", clientHelloRecords(t, clientTLS(t, "secret.lab.test", nil))},
		{"unknown config id", seal(t, other.Config, plainHello(t, "secret.lab.test"), nil).Record},
		{"malformed inner", sealBadPadding(t, k, plainHello(t, "secret.lab.test"))},
		{"not TLS", []byte("GET / HTTP/1.1\r\nHost: secret.lab.test\r\n\r\n")},
		{"inner in the clear", ech.MarshalRecords(seal(t, k.Config, plainHello(t, "secret.lab.test"), nil).Inner.Raw)},
	}
	for _, tc := range cases {
		cc, sc := tcpPair(t)
		oc := newOpenConn(sc, keys)
		want := append(append([]byte(nil), tc.sent...), tail...)
		go cc.Write(want) //nolint:errcheck
		got := make([]byte, len(want))
		if _, err := io.ReadFull(oc, got); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: read %x, %v; want the bytes sent, %x", tc.name, got, err, want)
		}
		if oc.accepted() != nil {
			t.Errorf("%s: opened", tc.name)
		}
	}
	cc, sc := tcpPair(t)
	oc := newOpenConn(sc, keys)
	go cc.Write(append(seal(t, k.Config, plainHello(t, "secret.lab.test"), nil).Record, tail...)) //nolint:errcheck
	f, err := readFlight(oc, DefaultMaxHello)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := ech.ParseClientHello(f.msg)
	if err != nil || ch.ECH == nil || ch.ECH.Type != ech.ECHInner || ch.ServerName != "secret.lab.test" {
		t.Fatalf("first message read through openConn: %+v, %v; want the ClientHelloInner", ch, err)
	}
	got := make([]byte, len(tail))
	if _, err := io.ReadFull(oc, got); err != nil || !bytes.Equal(got, tail) {
		t.Errorf("after the inner: %x, %v; want %x", got, err, tail)
	}
}

// TestSecondHelloAlerts: after a HelloRetryRequest to an opened
// ClientHello, a second ClientHelloOuter that does not decrypt gets
// decrypt_error and one without encrypted_client_hello missing_extension
// (RFC 9849 §7.1.1), from a shared-mode server and from a split front.
func TestSecondHelloAlerts(t *testing.T) {
	k := newKey(t, 11) // the split lab's key id
	sharedLog := &syncBuffer{}
	shared := startServer(t, Config{Keys: NewStaticKeys(k), ForceHRR: true, Log: sharedLog})
	l := startSplitLab(t, true)
	for _, srv := range []struct {
		name string
		addr string
		key  *ech.Key
		log  *syncBuffer
	}{{"shared", shared.Addr(), k, sharedLog}, {"split", l.split.Addr(), l.key, l.sLog}} {
		for i, tc := range []struct {
			name   string
			second func(s *ech.Sealed) []byte
			alert  byte
		}{
			{"tampered payload", func(s *ech.Sealed) []byte {
				s2, err := s.Context.SealSecond(plainHello(t, "secret.lab.test"))
				if err != nil {
					t.Fatal(err)
				}
				raw := bytes.Clone(s2.Outer.Raw)
				raw[s2.Outer.ECH.PayloadOffset] ^= 1
				return ech.MarshalRecordsVersion(raw, tls.VersionTLS12)
			}, alertDecryptError},
			{"no encrypted_client_hello", func(*ech.Sealed) []byte {
				return ech.MarshalRecordsVersion(plainHello(t, "secret.lab.test"), tls.VersionTLS12)
			}, alertMissingExtension},
		} {
			s := seal(t, srv.key.Config, plainHello(t, "secret.lab.test"), nil)
			c, err := net.Dial("tcp", srv.addr)
			if err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
			c.Write(s.Record)                              //nolint:errcheck
			f, err := readFlight(c, DefaultMaxHello)
			if err != nil {
				t.Fatalf("%s %s: server's first flight: %v", srv.name, tc.name, err)
			}
			if sh, err := ech.ParseServerHello(f.msg); err != nil || !sh.IsHRR {
				t.Fatalf("%s %s: %+v, %v; want a HelloRetryRequest", srv.name, tc.name, sh, err)
			}
			c.Write(tc.second(s)) //nolint:errcheck
			got, _ := io.ReadAll(c)
			c.Close()
			if !bytes.HasSuffix(got, alertRecord(tc.alert)) {
				t.Errorf("%s %s: got %x after the HelloRetryRequest, want the alert %x then a close", srv.name, tc.name, got, alertRecord(tc.alert))
			}
			if recs := srv.log.waitRecords(t, i+1); len(recs) != i+1 || recs[i].Error == "" || recs[i].ECH != ECHAccepted {
				t.Errorf("%s %s: records %+v", srv.name, tc.name, recs)
			}
		}
	}
}
