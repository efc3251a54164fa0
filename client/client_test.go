package client

import (
	"errors"
	"testing"
)

// echWorld starts a DNS server publishing list for secret.lab.test (owner
// at port 443, record port = the server's) and returns the options.
func echWorld(t *testing.T, l *lab, port int, list []byte, alpn string) Options {
	t.Helper()
	z := newZone(t,
		echRecord("secret.lab.test.", ".", port, list, alpn),
		"secret.lab.test. 60 IN A 127.0.0.1")
	return l.opts(z.startUDP(t))
}

func mustFetch(t testing.TB, url string, o Options) *Result {
	t.Helper()
	r, err := Fetch(ctxT(t), url, o)
	if err != nil {
		t.Fatalf("Fetch: %v\nresult: %+v", err, r)
	}
	return r
}

func wantSaw(t *testing.T, r *Result, sni string, echOK bool) {
	t.Helper()
	if r.ServerSaw["sni"] != sni || r.ServerSaw["ech"] != echOK {
		t.Errorf("server saw sni=%v ech=%v, want %s %v", r.ServerSaw["sni"], r.ServerSaw["ech"], sni, echOK)
	}
}

func TestFetchECHAcceptedH2(t *testing.T) {
	l := newLab(t)
	key, list := newKey(t, 7)
	port := startTLS(t, l.serverTLS(echKeys(key)))
	r := mustFetch(t, "https://secret.lab.test/", echWorld(t, l, port, list, "h2"))
	if r.ECH != ECHAccepted || r.HTTPProto != "HTTP/2.0" || r.ALPN != "h2" || r.Status != 200 {
		t.Fatalf("ech=%s proto=%s alpn=%s status=%d", r.ECH, r.HTTPProto, r.ALPN, r.Status)
	}
	wantSaw(t, r, "secret.lab.test", true)
	if r.ConfigSource != SourceDNS || r.ConfigID == nil || *r.ConfigID != 7 {
		t.Errorf("config source %s id %v", r.ConfigSource, r.ConfigID)
	}
	if r.OuterSNI != "public.lab.test" || r.InnerSNI != "secret.lab.test" || r.Retried || r.Fallback {
		t.Errorf("outer %q inner %q retried %v fallback %v", r.OuterSNI, r.InnerSNI, r.Retried, r.Fallback)
	}
	if r.Version != "TLS 1.3" || r.Cipher == "" || r.Group == "" || r.DNSTime <= 0 || r.HandshakeTime <= 0 || r.Bytes == 0 {
		t.Errorf("state: %+v", r)
	}
	if r.Discovery.Queries != 3 || r.RemoteAddr != "127.0.0.1:"+itoa(port) {
		t.Errorf("queries %d remote %s", r.Discovery.Queries, r.RemoteAddr)
	}
}

func TestFetchECHAcceptedH3(t *testing.T) {
	l := newLab(t)
	key, list := newKey(t, 9)
	port := startH3(t, l.serverTLS(echKeys(key)))
	o := echWorld(t, l, port, list, "h3")
	o.HTTP3 = true
	r := mustFetch(t, "https://secret.lab.test/", o)
	if r.ECH != ECHAccepted || r.HTTPProto != "HTTP/3.0" || r.ALPN != "h3" || r.Transport != "quic" {
		t.Fatalf("ech=%s proto=%s alpn=%s transport=%s", r.ECH, r.HTTPProto, r.ALPN, r.Transport)
	}
	wantSaw(t, r, "secret.lab.test", true)
	if *r.ConfigID != 9 || r.OuterSNI != "public.lab.test" {
		t.Errorf("config id %d outer %s", *r.ConfigID, r.OuterSNI)
	}
}

func TestFetchBaseline(t *testing.T) {
	l := newLab(t)
	key, list := newKey(t, 1)
	port := startTLS(t, l.serverTLS(echKeys(key)))
	o := echWorld(t, l, port, list, "h2")
	o.Mode = ModeBaseline
	o.ALPN = []string{"http/1.1"}
	r := mustFetch(t, "https://secret.lab.test/", o)
	if r.ECH != ECHNone || r.ConfigID != nil || r.OuterSNI != "secret.lab.test" || r.HTTPProto != "HTTP/1.1" {
		t.Fatalf("ech=%s id=%v outer=%s proto=%s", r.ECH, r.ConfigID, r.OuterSNI, r.HTTPProto)
	}
	wantSaw(t, r, "secret.lab.test", false)
}

func TestFetchStaleConfigRetries(t *testing.T) {
	l := newLab(t)
	_, stale := newKey(t, 1)
	fresh, _ := newKey(t, 2)
	port := startTLS(t, l.serverTLS(echKeys(fresh)))
	r := mustFetch(t, "https://secret.lab.test/", echWorld(t, l, port, stale, "h2"))
	if r.ECH != ECHAccepted || !r.Retried || *r.ConfigID != 1 || r.RetryConfigID == nil || *r.RetryConfigID != 2 {
		t.Fatalf("ech=%s retried=%v id=%v retry id=%v", r.ECH, r.Retried, r.ConfigID, r.RetryConfigID)
	}
	wantSaw(t, r, "secret.lab.test", true)

	o := echWorld(t, l, port, stale, "h2")
	o.NoRetry = true
	r, err := Fetch(ctxT(t), "https://secret.lab.test/", o)
	var rej *ECHRejectedError
	if !errors.As(err, &rej) || len(rej.RetryConfigList) == 0 || r.ECH != ECHRejected || r.Retried {
		t.Fatalf("NoRetry: err=%v ech=%s retried=%v", err, r.ECH, r.Retried)
	}
}

func TestFetchStaleConfigRetriesH3(t *testing.T) {
	l := newLab(t)
	_, stale := newKey(t, 1)
	fresh, _ := newKey(t, 2)
	port := startH3(t, l.serverTLS(echKeys(fresh)))
	o := echWorld(t, l, port, stale, "h3")
	o.HTTP3 = true
	r := mustFetch(t, "https://secret.lab.test/", o)
	if r.ECH != ECHAccepted || !r.Retried || *r.RetryConfigID != 2 {
		t.Fatalf("ech=%s retried=%v", r.ECH, r.Retried)
	}
}

func TestFetchRejectedWithoutRetryConfigs(t *testing.T) {
	l := newLab(t)
	_, list := newKey(t, 3)
	port := startTLS(t, l.serverTLS(nil)) // no ECH keys: no retry configs
	r, err := Fetch(ctxT(t), "https://secret.lab.test/", echWorld(t, l, port, list, "h2"))
	var ce *Error
	if !errors.As(err, &ce) || ce.Class != ClassECHRejected || !errors.Is(err, ErrECHRejected) {
		t.Fatalf("fail-closed: err=%v", err)
	}
	if r.ECH != ECHRejected || r.ErrorClass != ClassECHRejected || r.Fallback || r.Status != 0 {
		t.Fatalf("fail-closed result: %+v", r)
	}

	o := echWorld(t, l, port, list, "h2")
	o.Policy = PolicyFallback
	r = mustFetch(t, "https://secret.lab.test/", o)
	if r.ECH != ECHFallback || !r.Fallback || r.FallbackReason == "" || r.OuterSNI != "secret.lab.test" {
		t.Fatalf("fallback result: ech=%s fallback=%v reason=%q outer=%s", r.ECH, r.Fallback, r.FallbackReason, r.OuterSNI)
	}
	wantSaw(t, r, "secret.lab.test", false)
}

func TestFetchConfigFromOption(t *testing.T) {
	l := newLab(t)
	key, list := newKey(t, 5)
	port := startTLS(t, l.serverTLS(echKeys(key)))
	o := Options{ConfigList: list, ConnectTo: "127.0.0.1:" + itoa(port), RootCAs: l.ca.Pool()}
	r := mustFetch(t, "https://secret.lab.test/", o)
	if r.ECH != ECHAccepted || r.ConfigSource != SourceOption || r.DNSTime != 0 || r.Discovery != nil {
		t.Fatalf("ech=%s source=%s", r.ECH, r.ConfigSource)
	}
	wantSaw(t, r, "secret.lab.test", true)
}
