package server

import (
	"crypto/tls"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestSharedECHAcceptedHTTP2(t *testing.T) {
	k := newKey(t, 7)
	logBuf := &syncBuffer{}
	s := startServer(t, Config{Keys: NewStaticKeys(k), Log: logBuf})
	c := httpClient(s.Addr(), clientTLS(t, "secret.lab.test", configList(t, k)))
	resp, in := getJSON(t, c, "secret.lab.test")
	if resp.Proto != "HTTP/2.0" {
		t.Errorf("Proto = %q, want HTTP/2.0", resp.Proto)
	}
	if resp.TLS == nil || !resp.TLS.ECHAccepted {
		t.Fatalf("client ConnectionState.ECHAccepted = false")
	}
	if in.ECH != ECHAccepted || in.OuterSNI != "public.lab.test" || in.InnerSNI != "secret.lab.test" {
		t.Errorf("/api/conn: ech=%q outer=%q inner=%q", in.ECH, in.OuterSNI, in.InnerSNI)
	}
	if in.ConfigID == nil || *in.ConfigID != 7 || in.HPKESuite != "HKDF-SHA256/AES-128-GCM" {
		t.Errorf("/api/conn: config_id=%v suite=%q", in.ConfigID, in.HPKESuite)
	}
	if in.HTTP != "http/2" || in.ALPN != "h2" || in.Version != "TLSv1.3" || in.HRR {
		t.Errorf("/api/conn: http=%q alpn=%q version=%q hrr=%v", in.HTTP, in.ALPN, in.Version, in.HRR)
	}

	resp, err := c.Get("https://secret.lab.test/cdn-cgi/trace")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"http=http/2\n", "tls=TLSv1.3\n", "sni=encrypted\n", "ech=accepted\n",
		"outer_sni=public.lab.test\n", "inner_sni=secret.lab.test\n", "ech_config_id=7\n", "fl=echlab\n", "ip=127.0.0.1\n"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("trace lacks %q:\n%s", want, body)
		}
	}
	resp, err = c.Get("https://secret.lab.test/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), "ECH accepted") || !strings.Contains(string(page), "<td>public.lab.test</td>") {
		t.Errorf("page lacks ECH status or outer SNI:\n%s", page)
	}

	recs := logBuf.waitRecords(t, 1)
	if len(recs) != 1 {
		t.Fatalf("%d log records, want 1 (one connection)", len(recs))
	}
	r := recs[0]
	if r.Schema != RecordSchema || r.Mode != "shared" || r.Transport != TransportTCP || r.ECH != ECHAccepted ||
		r.OuterSNI != "public.lab.test" || r.InnerSNI != "secret.lab.test" || r.ConfigID == nil || *r.ConfigID != 7 ||
		r.ALPN != "h2" || r.Version != "TLSv1.3" || r.Cipher == "" || r.HandshakeMS <= 0 || r.HRR ||
		!strings.HasPrefix(r.ClientAddr, "127.0.0.1:") || r.Time.IsZero() || r.Error != "" {
		t.Errorf("log record = %+v", r)
	}
}

func TestSharedNoECHClient(t *testing.T) {
	k := newKey(t, 1)
	logBuf := &syncBuffer{}
	s := startServer(t, Config{Keys: NewStaticKeys(k), Log: logBuf})
	c := httpClient(s.Addr(), clientTLS(t, "secret.lab.test", nil))
	_, in := getJSON(t, c, "secret.lab.test")
	if in.ECH != ECHNone || in.OuterSNI != "secret.lab.test" || in.InnerSNI != "" || in.ConfigID != nil {
		t.Errorf("/api/conn = %+v", in)
	}
}

func TestSharedStaleConfigGetsRetryConfigs(t *testing.T) {
	stale, fresh := newKey(t, 1), newKey(t, 2)
	logBuf := &syncBuffer{}
	s := startServer(t, Config{Keys: NewStaticKeys(fresh), Log: logBuf})
	c := httpClient(s.Addr(), clientTLS(t, "secret.lab.test", configList(t, stale)))
	_, err := c.Get("https://secret.lab.test/api/conn")
	var rej *tls.ECHRejectionError
	if !errors.As(err, &rej) || len(rej.RetryConfigList) == 0 {
		t.Fatalf("err = %v, want ECHRejectionError with retry configs", err)
	}
	if string(rej.RetryConfigList) != string(configList(t, fresh)) {
		t.Errorf("retry configs %x, want %x", rej.RetryConfigList, configList(t, fresh))
	}
	recs := logBuf.waitRecords(t, 1)
	if len(recs) != 1 || recs[0].ECH != ECHGrease || !recs[0].RetryConfigs || recs[0].OuterSNI != "public.lab.test" {
		t.Errorf("log = %+v", recs)
	}
	c = httpClient(s.Addr(), clientTLS(t, "secret.lab.test", rej.RetryConfigList))
	_, in := getJSON(t, c, "secret.lab.test")
	if in.ECH != ECHAccepted || in.InnerSNI != "secret.lab.test" {
		t.Errorf("after retry: %+v", in)
	}
}
