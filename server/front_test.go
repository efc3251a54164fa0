package server

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudflare/circl/hpke"
	"github.com/echlab/echlab/ech"
)

// plainHello is crypto/tls's ClientHello for name without ECH, as a
// handshake message: the ClientHelloInner the tests seal themselves.
func plainHello(t testing.TB, name string) []byte {
	t.Helper()
	cfg := clientTLS(t, name, nil)
	cfg.MinVersion = tls.VersionTLS13
	return clientHelloRecords(t, cfg)[recordHeaderLen:]
}

// seal seals inner to cfg with ech.Seal. cfg may differ from the key's
// published config (another config_id, an extra suite) while keeping its
// Raw bytes, so the HPKE context is the published one: what an attacker
// re-sealing a hello with the public key would send.
func seal(t testing.TB, cfg ech.Config, inner []byte, opts *ech.SealOptions) *ech.Sealed {
	t.Helper()
	s, err := ech.Seal(&cfg, inner, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// firstRecord dials addr, sends records and returns the first record of
// the answer (type and payload); the conn is closed afterwards.
func firstRecord(t testing.TB, addr string, records []byte) (byte, []byte) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(records); err != nil {
		t.Fatal(err)
	}
	var hdr [recordHeaderLen]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		t.Fatalf("no answer: %v", err)
	}
	body := make([]byte, int(hdr[3])<<8|int(hdr[4]))
	if _, err := io.ReadFull(c, body); err != nil {
		t.Fatalf("answer record: %v", err)
	}
	return hdr[0], body
}

// TestFrontRejectedECHNeverAccepted sends ClientHellos the relay must
// refuse to open, re-sealed with the real public key and HPKE info: one
// naming config_id+1, one using a cipher suite the config does not
// advertise. The public-name server must complete them with the outer
// ClientHello (no ECH acceptance confirmation in the ServerHello) and log
// them as not accepted, with retry configs. A genuine one is the control.
func TestFrontRejectedECHNeverAccepted(t *testing.T) {
	l := startSplitLab(t, false)
	inner := plainHello(t, "secret.lab.test")
	chacha := ech.CipherSuite{KDF: uint16(hpke.KDF_HKDF_SHA256), AEAD: uint16(hpke.AEAD_ChaCha20Poly1305)}
	otherID := l.key.Config
	otherID.ConfigID++
	otherSuite := l.key.Config
	otherSuite.CipherSuites = append(slices.Clone(otherSuite.CipherSuites), chacha)
	cases := []struct {
		name     string
		sealed   *ech.Sealed
		accepted bool
		relayECH string
	}{
		{"genuine", seal(t, l.key.Config, inner, nil), true, ECHAccepted},
		{"config_id+1", seal(t, otherID, inner, nil), false, ECHGrease},
		{"unadvertised suite", seal(t, otherSuite, inner, &ech.SealOptions{Suite: &chacha}), false, ECHRejected},
	}
	for i, tc := range cases {
		typ, body := firstRecord(t, l.split.Addr(), tc.sealed.Record)
		if typ != recordHandshake {
			t.Fatalf("%s: answer record type %d (%x)", tc.name, typ, body)
		}
		got, err := ech.VerifyAccepted(tc.sealed.Inner.Raw, body)
		if err != nil || got != tc.accepted {
			t.Errorf("%s: ServerHello confirms ECH: %v (%v), want %v", tc.name, got, err, tc.accepted)
		}
		recs := l.sLog.waitRecords(t, 2*i+1)
		var relay, public []ConnRecord
		for _, r := range recs {
			switch {
			case r.Mode == "split" && r.ConfigID != nil && *r.ConfigID == tc.sealed.ConfigID && r.HPKESuite == suiteName(tc.sealed.Suite):
				relay = append(relay, r)
			case r.Mode == "split-public":
				public = append(public, r)
			}
		}
		if len(relay) != 1 || relay[0].ECH != tc.relayECH {
			t.Errorf("%s: relay records %+v, want one with ech=%s", tc.name, relay, tc.relayECH)
		}
		if tc.accepted {
			continue
		}
		if len(public) != i || public[i-1].ECH == ECHAccepted || !public[i-1].RetryConfigs || public[i-1].InnerSNI != "" {
			t.Errorf("%s: public server records %+v, want the last one not accepted, with retry configs", tc.name, public)
		}
	}
}

// sealBadPadding seals inner to the key like ech.Seal but with a nonzero
// padding byte in the EncodedClientHelloInner: the payload opens, the
// inner does not decode (ech.ErrBadPadding).
func sealBadPadding(t testing.TB, k *ech.Key, inner []byte) []byte {
	t.Helper()
	s := seal(t, k.Config, inner, nil)
	if s.PaddingLen == 0 {
		t.Fatal("no padding to spoil")
	}
	encoded := slices.Clone(s.EncodedInner)
	encoded[len(encoded)-1] = 1
	suite := hpke.NewSuite(hpke.KEM(k.Config.KEM), hpke.KDF(s.Suite.KDF), hpke.AEAD(s.Suite.AEAD))
	scheme, err := ech.KEMScheme(k.Config.KEM)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := scheme.UnmarshalBinaryPublicKey(k.Config.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	snd, err := suite.NewSender(pk, append([]byte("tls ech\x00"), k.Config.Raw...))
	if err != nil {
		t.Fatal(err)
	}
	enc, sealer, err := snd.Setup(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	e := s.Outer.ECH
	raw := slices.Clone(s.Outer.Raw)
	copy(raw[e.PayloadOffset-2-len(e.Enc):], enc)
	clear(raw[e.PayloadOffset : e.PayloadOffset+len(e.Payload)])
	ct, err := sealer.Seal(encoded, raw[4:])
	if err != nil {
		t.Fatal(err)
	}
	copy(raw[e.PayloadOffset:], ct)
	return ech.MarshalRecords(raw)
}

// readAll reads what the relay sends until it closes.
func readAll(t testing.TB, addr string, records []byte) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write(records) //nolint:errcheck
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	return got
}

// TestFrontAlerts checks the alerts the front ends a refused ClientHello
// with (RFC 9849 §7 and §7.1, RFC 8446 §6.2): a ClientHelloOuter that opens
// but whose inner is malformed, a ClientHelloInner sent in the clear, and
// a name without a route; none of them reaches a backend or the public
// server.
func TestFrontAlerts(t *testing.T) {
	l := startSplitLab(t, false)
	innerType, err := ech.ParseClientHello(seal(t, l.key.Config, plainHello(t, "secret.lab.test"), nil).Inner.Raw)
	if err != nil {
		t.Fatal(err)
	}
	noRoute, err := StartSplit(SplitConfig{Keys: l.keys, CA: testCA(t), Log: l.sLog, Routes: Routes{"secret.lab.test": l.a.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	defer noRoute.Close()
	cases := []struct {
		name   string
		addr   string
		in     []byte
		alert  byte
		ech    string
		errHas string
	}{
		{"malformed inner", l.split.Addr(), sealBadPadding(t, l.key, plainHello(t, "secret.lab.test")), alertIllegalParameter, ECHRejected, "padding"},
		{"inner in the clear", l.split.Addr(), ech.MarshalRecords(innerType.Raw), alertIllegalParameter, ECHInnerInClear, "type inner"},
		{"no route", noRoute.Addr(), clientHelloRecords(t, clientTLS(t, "nowhere.lab.test", nil)), alertUnrecognizedName, ECHNone, "no route"},
		{"no route for the inner name", noRoute.Addr(), seal(t, l.key.Config, plainHello(t, "nowhere.lab.test"), nil).Record,
			alertUnrecognizedName, ECHAccepted, "no route"},
	}
	for i, tc := range cases {
		if got := readAll(t, tc.addr, tc.in); !bytes.Equal(got, alertRecord(tc.alert)) {
			t.Errorf("%s: got %x, want the fatal alert %x then a close", tc.name, got, alertRecord(tc.alert))
		}
		recs := l.sLog.waitRecords(t, i+1)
		if len(recs) != i+1 {
			t.Fatalf("%s: %d records: %+v", tc.name, len(recs), recs)
		}
		r := recs[i]
		if r.Mode != "split" || r.ECH != tc.ech || !strings.Contains(r.Error, tc.errHas) || r.Route == "public" {
			t.Errorf("%s: relay record %+v, want ech=%s and an error about %q", tc.name, r, tc.ech, tc.errHas)
		}
	}
	if n := len(l.aLog.records(t)) + len(l.bLog.records(t)); n != 0 {
		t.Errorf("%d backend records for refused ClientHellos", n)
	}
}

// decryptingRelay is a minimal split front for tests: it opens the
// client's ClientHelloOuter with k and sends hdr(inner) and the
// ClientHelloInner in the clear to backend, then copies bytes. With hdr
// returning nil, the backend gets exactly what a client sending a
// ClientHelloInner in plaintext would send.
func decryptingRelay(t testing.TB, k *ech.Key, backend string, hdr func(c net.Conn, inner *ech.ClientHello) []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				f, err := readFlight(c, DefaultMaxHello)
				if err != nil {
					return
				}
				ch, err := ech.ParseClientHello(f.msg)
				if err != nil {
					return
				}
				o, err := ech.Open(ech.KeyList{k}, ch, nil)
				if err != nil {
					return
				}
				b, err := net.Dial("tcp", backend)
				if err != nil {
					return
				}
				defer b.Close()
				b.Write(append(hdr(c, o.Inner), ech.MarshalRecords(o.Inner.Raw)...)) //nolint:errcheck
				go io.Copy(b, c)                                                     //nolint:errcheck
				io.Copy(c, b)                                                        //nolint:errcheck
			}()
		}
	}()
	return ln.Addr().String()
}

// TestFrontInnerInClear: a ClientHelloInner that reaches a server in the
// clear, without a verified front header, is logged and shown on
// /api/conn and /cdn-cgi/trace as inner-in-clear, never accepted: sent
// straight to the server, through a split front without the secret, and
// with a forged or replayed header. A genuine front header makes it
// accepted with the outer facts and the client's address.
func TestFrontInnerInClear(t *testing.T) {
	secret := []byte("the backend's front secret......")
	k := newKey(t, 7)
	list := configList(t, k)
	log := &syncBuffer{}
	srv := startServer(t, Config{Names: []string{"secret.lab.test"}, Mode: "split-backend", Log: log, FrontSecret: secret})
	noHeader := func(net.Conn, *ech.ClientHello) []byte { return nil }
	header := func(key []byte, random func(*ech.ClientHello) []byte) func(net.Conn, *ech.ClientHello) []byte {
		return func(c net.Conn, inner *ech.ClientHello) []byte {
			id := uint8(7)
			h, err := sealFrontHeader(key, addrPort(c.RemoteAddr()), addrPort(c.LocalAddr()),
				frontVerdict{ECH: ECHAccepted, OuterSNI: "public.lab.test", ConfigID: &id, Suite: k.Config.CipherSuites[0]}, random(inner))
			if err != nil {
				t.Error(err)
			}
			return h
		}
	}
	itsRandom := func(ch *ech.ClientHello) []byte { return ch.Random }
	otherRandom := func(*ech.ClientHello) []byte { return make([]byte, 32) }
	keys := &ech.KeySet{}
	keys.Add(k, true)
	frontNoSecret, err := StartSplit(SplitConfig{Keys: keys, CA: testCA(t), Routes: Routes{"*": srv.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	defer frontNoSecret.Close()
	cases := []struct {
		name  string
		addr  string
		ech   string
		front string
	}{
		{"straight to the server", decryptingRelay(t, k, srv.Addr(), noHeader), ECHInnerInClear, ""},
		{"split front without the secret", frontNoSecret.Addr(), ECHInnerInClear, ""},
		{"forged header", decryptingRelay(t, k, srv.Addr(), header([]byte("not the secret, not the secret!!"), itsRandom)), ECHInnerInClear, FrontInvalid},
		{"replayed header", decryptingRelay(t, k, srv.Addr(), header(secret, otherRandom)), ECHInnerInClear, FrontInvalid},
		{"genuine header", decryptingRelay(t, k, srv.Addr(), header(secret, itsRandom)), ECHAccepted, FrontVerified},
	}
	for i, tc := range cases {
		c := httpClient(tc.addr, clientTLS(t, "secret.lab.test", list))
		resp, in := getJSON(t, c, "secret.lab.test")
		trace := getBody(t, c, "https://secret.lab.test/cdn-cgi/trace")
		c.CloseIdleConnections()
		if !resp.TLS.ECHAccepted {
			t.Fatalf("%s: the client saw no ECH acceptance", tc.name)
		}
		recs := log.waitRecords(t, i+1)
		if len(recs) != i+1 {
			t.Fatalf("%s: %d records", tc.name, len(recs))
		}
		r := recs[i]
		for _, got := range []ConnRecord{r, in.ConnRecord} {
			if got.ECH != tc.ech || got.Front != tc.front {
				t.Errorf("%s: ech=%s front=%q, want ech=%s front=%q (%+v)", tc.name, got.ECH, got.Front, tc.ech, tc.front, got)
			}
		}
		if !strings.Contains(trace, "\nech="+tc.ech+"\n") {
			t.Errorf("%s: trace says\n%s", tc.name, trace)
		}
		switch tc.ech {
		case ECHInnerInClear:
			if r.OuterSNI != "secret.lab.test" || r.InnerSNI != "" || !strings.Contains(trace, "\nsni=plaintext\n") {
				t.Errorf("%s: outer %q inner %q, trace\n%s", tc.name, r.OuterSNI, r.InnerSNI, trace)
			}
		case ECHAccepted:
			if r.OuterSNI != "public.lab.test" || r.InnerSNI != "secret.lab.test" || r.ConfigID == nil || *r.ConfigID != 7 ||
				r.HPKESuite != "HKDF-SHA256/AES-128-GCM" || !strings.Contains(trace, "\nsni=encrypted\n") {
				t.Errorf("%s: record %+v", tc.name, r)
			}
		}
	}
}

// getBody fetches url and returns the body.
func getBody(t testing.TB, c *http.Client, url string) string {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
