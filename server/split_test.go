package server

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/echlab/echlab/ech"
)

type splitLab struct {
	keys             *ech.KeySet
	key              *ech.Key
	secret           []byte // FrontSecret of the relay and every backend
	split            *Split
	a, b, plain      *Server
	aLog, bLog, sLog *syncBuffer
}

// startSplitLab starts two ECH backends (secret, other), a passthrough
// backend (plain, also the catch-all) and the relay in front of them, all
// sharing one FrontSecret.
func startSplitLab(t testing.TB, forceHRR bool, readTimeout ...time.Duration) *splitLab {
	t.Helper()
	l := &splitLab{keys: &ech.KeySet{}, key: newKey(t, 11), secret: []byte("split lab front secret, 32 bytes"),
		aLog: &syncBuffer{}, bLog: &syncBuffer{}, sLog: &syncBuffer{}}
	l.keys.Add(l.key, true)
	l.a = startServer(t, Config{Names: []string{"secret.lab.test"}, Mode: "split-backend", Log: l.aLog, ForceHRR: forceHRR, FrontSecret: l.secret})
	l.b = startServer(t, Config{Names: []string{"other.lab.test"}, Mode: "split-backend", Log: l.bLog, ForceHRR: forceHRR, FrontSecret: l.secret})
	l.plain = startServer(t, Config{Names: []string{"plain.lab.test"}, FrontSecret: l.secret})
	var err error
	cfg := SplitConfig{Keys: l.keys, CA: testCA(t), Log: l.sLog, FrontSecret: l.secret, Routes: Routes{
		"secret.lab.test": l.a.Addr(), "other.lab.test": l.b.Addr(), "plain.lab.test": l.plain.Addr(), "*": l.plain.Addr(),
	}}
	if len(readTimeout) > 0 {
		cfg.ReadTimeout = readTimeout[0]
	}
	l.split, err = StartSplit(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.split.Close() })
	return l
}

func TestSplitRoutesByInnerSNI(t *testing.T) {
	l := startSplitLab(t, false)
	list := configList(t, l.key)
	for _, tc := range []struct {
		name string
		log  *syncBuffer
	}{{"secret.lab.test", l.aLog}, {"other.lab.test", l.bLog}} {
		c := httpClient(l.split.Addr(), clientTLS(t, tc.name, list))
		resp, in := getJSON(t, c, tc.name)
		if !resp.TLS.ECHAccepted || resp.Proto != "HTTP/2.0" {
			t.Errorf("%s: ECHAccepted=%v Proto=%s", tc.name, resp.TLS.ECHAccepted, resp.Proto)
		}
		if in.InnerSNI != tc.name || in.ECH != ECHAccepted || in.Mode != "split-backend" || in.OuterSNI != "public.lab.test" ||
			in.ConfigID == nil || *in.ConfigID != 11 || in.HPKESuite != "HKDF-SHA256/AES-128-GCM" || in.Front != FrontVerified {
			t.Errorf("%s: backend saw %+v", tc.name, in)
		}
		if recs := tc.log.waitRecords(t, 1); len(recs) != 1 || recs[0].InnerSNI != tc.name {
			t.Errorf("%s: backend log %+v", tc.name, recs)
		}
	}
	recs := l.sLog.waitRecords(t, 2)
	if len(recs) != 2 {
		t.Fatalf("relay log: %+v", recs)
	}
	// Each record is written when its connection ends, in either order.
	if recs[0].InnerSNI != "secret.lab.test" {
		recs[0], recs[1] = recs[1], recs[0]
	}
	for i, want := range []struct{ inner, backend string }{{"secret.lab.test", l.a.Addr()}, {"other.lab.test", l.b.Addr()}} {
		r := recs[i]
		if r.Mode != "split" || r.Route != "ech" || r.ECH != ECHAccepted || r.OuterSNI != "public.lab.test" ||
			r.InnerSNI != want.inner || r.Backend != want.backend || r.ConfigID == nil || *r.ConfigID != 11 || r.Error != "" {
			t.Errorf("relay record %d = %+v", i, r)
		}
	}
	// The backend logs the client's own address, from the front header,
	// and the front's as the TCP peer.
	if b := l.aLog.records(t); len(b) != 1 || b[0].ClientAddr != recs[0].ClientAddr || b[0].FrontAddr == "" || b[0].FrontAddr == b[0].ClientAddr {
		t.Errorf("backend record %+v, want client_addr %s from the front header", b, recs[0].ClientAddr)
	}
}

func TestSplitPassthrough(t *testing.T) {
	l := startSplitLab(t, false)
	c := httpClient(l.split.Addr(), clientTLS(t, "plain.lab.test", nil))
	resp, in := getJSON(t, c, "plain.lab.test")
	if resp.TLS.ECHAccepted || in.ECH != ECHNone || in.OuterSNI != "plain.lab.test" || in.Mode != "baseline" {
		t.Errorf("passthrough: %+v", in)
	}
	recs := l.sLog.waitRecords(t, 1)
	if len(recs) != 1 || recs[0].Route != "passthrough" || recs[0].Backend != l.plain.Addr() || recs[0].OuterSNI != "plain.lab.test" {
		t.Errorf("relay log: %+v", recs)
	}
}

func TestSplitHRR(t *testing.T) {
	l := startSplitLab(t, true)
	c := httpClient(l.split.Addr(), clientTLS(t, "secret.lab.test", configList(t, l.key)))
	resp, in := getJSON(t, c, "secret.lab.test")
	if !resp.TLS.ECHAccepted || !resp.TLS.HelloRetryRequest {
		t.Fatalf("ECHAccepted=%v HelloRetryRequest=%v", resp.TLS.ECHAccepted, resp.TLS.HelloRetryRequest)
	}
	if !in.HRR || in.InnerSNI != "secret.lab.test" {
		t.Errorf("backend saw %+v", in)
	}
	if recs := l.sLog.waitRecords(t, 1); len(recs) != 1 || !recs[0].HRR || recs[0].ECH != ECHAccepted {
		t.Errorf("relay log: %+v", recs)
	}
}

func TestSplitStaleConfigGoesToPublic(t *testing.T) {
	l := startSplitLab(t, false)
	stale := newKey(t, 11) // same id, different key: decryption fails
	c := httpClient(l.split.Addr(), clientTLS(t, "secret.lab.test", configList(t, stale)))
	_, err := c.Get("https://secret.lab.test/")
	var rej *tls.ECHRejectionError
	if !errors.As(err, &rej) || string(rej.RetryConfigList) != string(configList(t, l.key)) {
		t.Fatalf("err = %v, want rejection with the relay's configs", err)
	}
	c = httpClient(l.split.Addr(), clientTLS(t, "secret.lab.test", rej.RetryConfigList))
	if _, in := getJSON(t, c, "secret.lab.test"); in.ECH != ECHAccepted || in.InnerSNI != "secret.lab.test" {
		t.Errorf("after retry: %+v", in)
	}
	var sawPublic bool
	for _, r := range l.sLog.waitRecords(t, 3) {
		if r.Mode == "split" && r.Route == "public" && r.ECH == ECHRejected && r.RetryConfigs {
			sawPublic = true
		}
	}
	if !sawPublic {
		t.Errorf("no rejected/public relay record: %+v", l.sLog.records(t))
	}
}

func TestSplitMalformedClientHello(t *testing.T) {
	l := startSplitLab(t, false)
	// A real ClientHello to truncate.
	pc, sc := net.Pipe()
	go tls.Client(pc, clientTLS(t, "secret.lab.test", configList(t, l.key))).Handshake() //nolint:errcheck
	good, err := readFlight(sc, DefaultMaxHello)
	pc.Close()
	if err != nil {
		t.Fatal(err)
	}
	raw := good.raw()
	// Each bad ClientHello is answered with its fatal alert record (RFC
	// 8446 §6.2), then a FIN; a client's own alert gets no answer.
	cases := map[string]struct {
		in   []byte
		want []byte
	}{
		"garbage":          {[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), alertRecord(alertDecodeError)},
		"truncated record": {raw[:len(raw)/2], alertRecord(alertDecodeError)},
		"truncated header": {raw[:3], alertRecord(alertDecodeError)},
		"bad length":       {append([]byte{22, 3, 1, 0xff, 0xff}, make([]byte, 100)...), alertRecord(alertDecodeError)},
		"alert":            {[]byte{21, 3, 3, 0, 2, 2, 40}, nil},
		"application data": {[]byte{23, 3, 3, 0, 1, 0}, alertRecord(alertUnexpectedMessage)},
		"not a hello":      {ech.MarshalRecords([]byte{2, 0, 0, 4, 1, 2, 3, 4}), alertRecord(alertUnexpectedMessage)},
		"bad hello body":   {ech.MarshalRecords([]byte{1, 0, 0, 6, 3, 3, 0, 0, 0, 0}), alertRecord(alertDecodeError)},
		"one-byte records": {refragment(raw, 1), alertRecord(alertDecodeError)},
	}
	for name, tc := range cases {
		payload := tc.in
		c, err := net.Dial("tcp", l.split.Addr())
		if err != nil {
			t.Fatal(err)
		}
		c.Write(payload)
		if tc, ok := c.(*net.TCPConn); ok {
			tc.CloseWrite() // the relay sees EOF instead of waiting for its timeout
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, err := io.ReadAll(c)
		if err != nil || !bytes.Equal(got, tc.want) {
			t.Errorf("%s: read %x, err %v; want %x then a clean close", name, got, err, tc.want)
		}
		c.Close()
	}
	recs := l.sLog.waitRecords(t, len(cases))
	if len(recs) != len(cases) {
		t.Fatalf("%d relay records for %d bad ClientHellos", len(recs), len(cases))
	}
	for _, r := range recs {
		if r.Error == "" || !strings.HasPrefix(r.Error, "server: ") {
			t.Errorf("record without a server error: %+v", r)
		}
	}
	// The relay still works.
	c := httpClient(l.split.Addr(), clientTLS(t, "secret.lab.test", configList(t, l.key)))
	if _, in := getJSON(t, c, "secret.lab.test"); in.ECH != ECHAccepted {
		t.Errorf("after bad input: %+v", in)
	}
}

func TestSplitReadTimeout(t *testing.T) {
	l := startSplitLab(t, false, 100*time.Millisecond)
	c, err := net.Dial("tcp", l.split.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte{22, 3, 1, 0, 50}) // a header, then silence
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := io.Copy(io.Discard, c); err != nil || n != 0 {
		t.Errorf("read %d bytes, err %v; want the relay to close", n, err)
	}
}

func TestParseRoutes(t *testing.T) {
	r, err := ParseRoutes("secret.lab.test=127.0.0.1:1, *=127.0.0.1:2")
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := r.Lookup("SECRET.lab.test"); a != "127.0.0.1:1" {
		t.Errorf("exact: %q", a)
	}
	if a, _ := r.Lookup("other"); a != "127.0.0.1:2" {
		t.Errorf("catch-all: %q", a)
	}
	if r.String() != "*=127.0.0.1:2,secret.lab.test=127.0.0.1:1" {
		t.Errorf("String = %q", r.String())
	}
	for _, bad := range []string{"x", "a=nohostport", "=1.2.3.4:5"} {
		if _, err := ParseRoutes(bad); !errors.Is(err, ErrConfig) {
			t.Errorf("ParseRoutes(%q) err = %v", bad, err)
		}
	}
	if _, ok := (Routes{"a": "127.0.0.1:1"}).Lookup("b"); ok {
		t.Error("lookup without catch-all matched")
	}
}
