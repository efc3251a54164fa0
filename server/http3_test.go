package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// h3Client makes an HTTP/3 client that dials udpAddr whatever the URL says.
func h3Client(t *testing.T, udpAddr string, cfg *tls.Config) *http.Client {
	tr := &http3.Transport{
		TLSClientConfig: cfg,
		Dial: func(ctx context.Context, _ string, tlsCfg *tls.Config, qc *quic.Config) (*quic.Conn, error) {
			return quic.DialAddr(ctx, udpAddr, tlsCfg, qc)
		},
	}
	t.Cleanup(func() { tr.Close() })
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func TestSharedECHAcceptedHTTP3(t *testing.T) {
	k := newKey(t, 9)
	logBuf := &syncBuffer{}
	s := startServer(t, Config{Keys: NewStaticKeys(k), Log: logBuf, HTTP3: true})
	if s.UDPAddr() == "" {
		t.Fatal("no UDP address with HTTP3 set")
	}
	// The TCP side advertises h3 on the UDP port.
	c := httpClient(s.Addr(), clientTLS(t, "secret.lab.test", configList(t, k)))
	resp, _ := getJSON(t, c, "secret.lab.test")
	if alt := resp.Header.Get("Alt-Svc"); !strings.HasPrefix(alt, `h3=":`) ||
		!strings.Contains(alt, s.UDPAddr()[strings.LastIndex(s.UDPAddr(), ":")+1:]) {
		t.Errorf("Alt-Svc = %q, UDP address %s", alt, s.UDPAddr())
	}

	cfg := clientTLS(t, "secret.lab.test", configList(t, k))
	cfg.NextProtos = nil
	h3 := h3Client(t, s.UDPAddr(), cfg)
	resp, err := h3.Get("https://secret.lab.test/api/conn")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Proto != "HTTP/3.0" || resp.TLS == nil || !resp.TLS.ECHAccepted {
		t.Fatalf("Proto %q, TLS %+v", resp.Proto, resp.TLS)
	}
	var in ConnInfo
	if err := json.Unmarshal(body, &in); err != nil {
		t.Fatal(err)
	}
	if in.HTTP != "http/3" || in.Transport != TransportQUIC || in.ECH != ECHAccepted ||
		in.OuterSNI != "public.lab.test" || in.InnerSNI != "secret.lab.test" || in.ALPN != "h3" {
		t.Errorf("/api/conn over h3 = %+v", in)
	}
	recs := logBuf.waitRecords(t, 2)
	if len(recs) != 2 || recs[1].Transport != TransportQUIC || recs[1].ECH != ECHAccepted || recs[1].InnerSNI != "secret.lab.test" {
		t.Errorf("log = %+v", recs)
	}
	// Read from the client's Initials, as over TCP from its first flight.
	if r := recs[1]; r.ConfigID == nil || *r.ConfigID != 9 || r.HPKESuite != "HKDF-SHA256/AES-128-GCM" || r.OuterSNI != "public.lab.test" {
		t.Errorf("QUIC record without the ClientHello's facts: %+v", r)
	}
}

// TestHTTP3StaleConfigGetsRetryConfigs: a config under the server's
// config id whose key the server no longer has (the id was reused) is
// rejected with retry configs, and the retry succeeds.
func TestHTTP3StaleConfigGetsRetryConfigs(t *testing.T) {
	k, stale := newKey(t, 1), newKey(t, 1)
	logBuf := &syncBuffer{}
	s := startServer(t, Config{Keys: NewStaticKeys(k), HTTP3: true, Log: logBuf})
	cfg := clientTLS(t, "secret.lab.test", configList(t, stale))
	cfg.NextProtos = nil
	_, err := h3Client(t, s.UDPAddr(), cfg).Get("https://secret.lab.test/")
	var rej *tls.ECHRejectionError
	if !errors.As(err, &rej) || string(rej.RetryConfigList) != string(configList(t, k)) {
		t.Fatalf("err = %v, want ECHRejectionError with the server's configs", err)
	}
	var sawRejected bool
	for _, r := range logBuf.waitRecords(t, 1) {
		sawRejected = sawRejected || (r.Transport == TransportQUIC && r.ECH == ECHRejected && r.RetryConfigs &&
			r.OuterSNI == "public.lab.test" && r.Error != "" && r.ConfigID != nil && *r.ConfigID == 1)
	}
	if !sawRejected {
		t.Errorf("no failed QUIC record with ech=rejected: %+v", logBuf.records(t))
	}
	cfg = clientTLS(t, "secret.lab.test", rej.RetryConfigList)
	cfg.NextProtos = nil
	resp, err := h3Client(t, s.UDPAddr(), cfg).Get("https://secret.lab.test/cdn-cgi/trace")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "ech=accepted\n") || !strings.Contains(string(body), "http=http/3\n") {
		t.Errorf("trace after retry:\n%s", body)
	}
}

func TestHTTP3HRRWithECH(t *testing.T) {
	k := newKey(t, 6)
	s := startServer(t, Config{Keys: NewStaticKeys(k), HTTP3: true, ForceHRR: true})
	cfg := clientTLS(t, "secret.lab.test", configList(t, k))
	cfg.NextProtos = nil
	resp, err := h3Client(t, s.UDPAddr(), cfg).Get("https://secret.lab.test/api/conn")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !resp.TLS.ECHAccepted || !resp.TLS.HelloRetryRequest {
		t.Errorf("h3: ECHAccepted=%v HelloRetryRequest=%v", resp.TLS.ECHAccepted, resp.TLS.HelloRetryRequest)
	}
}

// TestHTTP3ECHStatusOfFailedHandshakes checks the ECH status of QUIC
// handshakes that fail: a certificate the client refuses after the server
// accepted ECH is not an ECH rejection; a stale config (the server's id,
// another key) answered with retry configs is; an ECH under an id the
// server never held is GREASE, retry configs or not.
func TestHTTP3ECHStatusOfFailedHandshakes(t *testing.T) {
	k, stale, stranger := newKey(t, 7), newKey(t, 7), newKey(t, 8)
	logBuf := &syncBuffer{}
	s := startServer(t, Config{Keys: NewStaticKeys(k), HTTP3: true, Log: logBuf})
	dial := func(list []byte) error {
		cfg := clientTLS(t, "secret.lab.test", list)
		cfg.NextProtos, cfg.RootCAs = []string{"h3"}, x509.NewCertPool() // trusts nothing
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := quic.DialAddr(ctx, s.UDPAddr(), cfg, &quic.Config{})
		if err == nil {
			c.CloseWithError(0, "")
		}
		return err
	}
	if err := dial(configList(t, k)); err == nil {
		t.Fatal("a client trusting no CA finished the handshake")
	}
	recs := logBuf.waitRecords(t, 1)
	if r := recs[0]; r.ECH != ECHAccepted || r.RetryConfigs || r.InnerSNI != "secret.lab.test" ||
		r.OuterSNI != "public.lab.test" || r.Error == "" {
		t.Errorf("refused certificate with ECH accepted: %+v", r)
	}
	if err := dial(configList(t, stale)); err == nil {
		t.Fatal("a client trusting no CA finished the handshake")
	}
	recs = logBuf.waitRecords(t, 2)
	if r := recs[1]; r.ECH != ECHRejected || !r.RetryConfigs || r.InnerSNI != "" || r.Error == "" ||
		r.ConfigID == nil || *r.ConfigID != 7 {
		t.Errorf("refused certificate with a stale config: %+v", r)
	}
	if err := dial(configList(t, stranger)); err == nil {
		t.Fatal("a client trusting no CA finished the handshake")
	}
	recs = logBuf.waitRecords(t, 3)
	if r := recs[2]; r.ECH != ECHGrease || !r.RetryConfigs || r.InnerSNI != "" || r.Error == "" ||
		r.ConfigID == nil || *r.ConfigID != 8 || r.HPKESuite == "" {
		t.Errorf("refused certificate with an unknown config id: %+v", r)
	}
}

func TestQUICECHStatus(t *testing.T) {
	ext := []uint16{extECH}
	for _, tc := range []struct {
		name  string
		calls func(o *quicECH)
		ech   string
		retry bool
	}{
		{"nothing seen", func(*quicECH) {}, ECHUnknown, false},
		{"failed before GetConfigForClient", func(o *quicECH) {
			o.noteKeys(&tls.ClientHelloInfo{Extensions: ext}, nil)
		}, ECHUnknown, false},
		{"outer hello kept, no EncryptedExtensions", func(o *quicECH) {
			info := &tls.ClientHelloInfo{Extensions: ext}
			o.noteKeys(info, nil)
			o.noteHello(info)
		}, ECHUnknown, false},
		{"outer hello kept, retry configs sent", func(o *quicECH) {
			info := &tls.ClientHelloInfo{Extensions: ext}
			o.noteKeys(info, nil)
			o.noteHello(info)
			o.noteKeys(info, []tls.EncryptedClientHelloKey{{SendAsRetry: true}})
		}, ECHRejected, true},
		{"outer hello kept, no retry key", func(o *quicECH) {
			info := &tls.ClientHelloInfo{Extensions: ext}
			o.noteKeys(info, nil)
			o.noteHello(info)
			o.noteKeys(info, []tls.EncryptedClientHelloKey{{SendAsRetry: false}})
		}, ECHUnknown, false},
		{"inner hello swapped in", func(o *quicECH) {
			o.noteKeys(&tls.ClientHelloInfo{Extensions: ext}, nil)
			inner := &tls.ClientHelloInfo{Extensions: []uint16{extECH}}
			o.noteHello(inner)
			o.noteKeys(inner, []tls.EncryptedClientHelloKey{{SendAsRetry: true}})
		}, ECHAccepted, false},
	} {
		o := &quicECH{}
		tc.calls(o)
		if ech, retry := o.status(); ech != tc.ech || retry != tc.retry {
			t.Errorf("%s: status %q, %v; want %q, %v", tc.name, ech, retry, tc.ech, tc.retry)
		}
	}
}
