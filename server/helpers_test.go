package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/internal/pki"
	"github.com/echlab/echlab/internal/testutil"
)

// syncBuffer is a goroutine-safe connection log sink.
type syncBuffer struct{ testutil.SyncBuffer }

// records parses the JSON lines written so far.
func (s *syncBuffer) records(t *testing.T) []ConnRecord {
	t.Helper()
	data := s.Bytes()
	var out []ConnRecord
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		var r ConnRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

// waitRecords waits until n records are logged (handshake logging runs
// on the server's goroutine, a moment after the client returns).
func (s *syncBuffer) waitRecords(t *testing.T, n int) []ConnRecord {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		recs := s.records(t)
		if len(recs) >= n || time.Now().After(deadline) {
			return recs
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var (
	caOnce sync.Once
	labCA  *pki.CA
)

func testCA(t testing.TB) *pki.CA {
	t.Helper()
	caOnce.Do(func() {
		var err error
		if labCA, err = pki.NewCA("test CA"); err != nil {
			panic(err)
		}
	})
	return labCA
}

func newKey(t testing.TB, id uint8) *ech.Key {
	t.Helper()
	k, err := ech.GenerateKey(ech.KeyOptions{ConfigID: id})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func configList(t testing.TB, keys ...*ech.Key) []byte {
	t.Helper()
	var raws [][]byte
	for _, k := range keys {
		raws = append(raws, k.Config.Raw)
	}
	l, err := ech.MarshalConfigList(raws...)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func startServer(t testing.TB, cfg Config) *Server {
	t.Helper()
	if cfg.CA == nil {
		cfg.CA = testCA(t)
	}
	s, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// clientTLS is a crypto/tls client config for name, trusting the lab CA,
// with an ECH config list when given.
func clientTLS(t testing.TB, name string, list []byte) *tls.Config {
	return &tls.Config{ServerName: name, RootCAs: testCA(t).Pool(),
		EncryptedClientHelloConfigList: list, NextProtos: []string{"h2", "http/1.1"}}
}

// httpClient makes an HTTP/2-capable client that dials addr whatever the
// URL says (names never go through the system resolver).
func httpClient(addr string, cfg *tls.Config) *http.Client {
	tr := &http.Transport{
		TLSClientConfig:   cfg,
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		},
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// getJSON fetches /api/conn.
func getJSON(t *testing.T, c *http.Client, host string) (*http.Response, ConnInfo) {
	t.Helper()
	resp, err := c.Get("https://" + host + "/api/conn")
	if err != nil {
		t.Fatalf("GET %s: %v", host, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var in ConnInfo
	if err := json.Unmarshal(body, &in); err != nil {
		t.Fatalf("decoding %q: %v", body, err)
	}
	return resp, in
}
