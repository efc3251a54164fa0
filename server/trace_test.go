package server

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// getTrace fetches /cdn-cgi/trace and returns its key=value lines.
func getTrace(t *testing.T, c *http.Client) (*http.Response, map[string]string) {
	t.Helper()
	resp, err := c.Get("https://secret.lab.test/cdn-cgi/trace")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	kv := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(body)), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("trace line %q is not key=value", line)
		}
		kv[k] = v
	}
	return resp, kv
}

// TestTraceHTTP1AndPlaintext checks the shared server over HTTP/1.1 with
// ECH, and the baseline's trace: sni=encrypted only when ECH carried the
// name, sni=plaintext otherwise.
func TestTraceHTTP1AndPlaintext(t *testing.T) {
	k := newKey(t, 4)
	s := startServer(t, Config{Keys: NewStaticKeys(k)})
	cfg := clientTLS(t, "secret.lab.test", configList(t, k))
	cfg.NextProtos = []string{"http/1.1"}
	c := httpClient(s.Addr(), cfg)
	c.Transport.(*http.Transport).ForceAttemptHTTP2 = false // keep ALPN http/1.1 only
	resp, kv := getTrace(t, c)
	if resp.Proto != "HTTP/1.1" || !resp.TLS.ECHAccepted {
		t.Fatalf("Proto %s, ECHAccepted %v", resp.Proto, resp.TLS.ECHAccepted)
	}
	want := map[string]string{"http": "http/1.1", "tls": "TLSv1.3", "sni": "encrypted", "ech": "accepted",
		"outer_sni": "public.lab.test", "inner_sni": "secret.lab.test", "ech_config_id": "4", "alpn": "http/1.1",
		"hrr": "no", "transport": "tcp", "mode": "shared"}
	for k, v := range want {
		if kv[k] != v {
			t.Errorf("ECH over HTTP/1.1: %s=%q, want %q", k, kv[k], v)
		}
	}

	base := startServer(t, Config{})
	_, kv = getTrace(t, httpClient(base.Addr(), clientTLS(t, "secret.lab.test", nil)))
	want = map[string]string{"http": "http/2", "sni": "plaintext", "ech": "none", "outer_sni": "secret.lab.test",
		"inner_sni": "", "ech_config_id": "", "mode": "baseline"}
	for k, v := range want {
		if got, ok := kv[k]; !ok || got != v {
			t.Errorf("baseline: %s=%q (present %v), want %q", k, got, ok, v)
		}
	}
}
