package main

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/echlab/echlab/client"
	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/internal/pki"
	"github.com/echlab/echlab/internal/testutil"
	"github.com/echlab/echlab/lab/capture"
	"github.com/echlab/echlab/lab/observe"
)

// twoKeySetCapture writes key sets a/ and b/ (and an esni/ folder without
// a keyset.json) under one folder, and a capture of one crypto/tls ECH
// connection sealed to each set's config, plus one ClientHelloOuter that
// ech.Seal made for set a with its ECH lines in a keylog. It returns the
// key folder, the capture and the keylog.
func twoKeySetCapture(t *testing.T) (keys, pcap, keylog string) {
	dir := t.TempDir()
	keys = filepath.Join(dir, "keys")
	ca, err := pki.NewCA("compare keys test CA")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue("server", []string{"public.lab.test", "secret.lab.test"}, false)
	if err != nil {
		t.Fatal(err)
	}
	srv := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}
	var lists [][]byte
	for i, name := range []string{"a", "b"} {
		k, err := ech.GenerateKey(ech.KeyOptions{ConfigID: uint8(10 + i)})
		if err != nil {
			t.Fatal(err)
		}
		ks := &ech.KeySet{}
		ks.Add(k, true)
		if err := ech.SaveKeySet(filepath.Join(keys, name), ks); err != nil {
			t.Fatal(err)
		}
		tk, err := k.TLSKey(false)
		if err != nil {
			t.Fatal(err)
		}
		srv.EncryptedClientHelloKeys = append(srv.EncryptedClientHelloKeys, tk)
		list, _ := ech.MarshalConfigList(k.Config.Raw)
		lists = append(lists, list)
	}
	os.MkdirAll(filepath.Join(keys, "esni"), 0o700)
	rec := capture.NewRecorder()
	ln := testutil.ListenTCP(t)
	testutil.AcceptEach(t, rec.WrapListener(ln), func(c net.Conn) {
		tc := tls.Server(c, srv)
		tc.SetDeadline(time.Now().Add(5 * time.Second))
		tc.Handshake()
		tc.Close()
	})
	for _, list := range lists {
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{ServerName: "secret.lab.test", RootCAs: ca.Pool(),
			MinVersion: tls.VersionTLS13, EncryptedClientHelloConfigList: list})
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	var kl bytes.Buffer
	ks, err := ech.LoadKeySet(filepath.Join(keys, "a"))
	if err != nil {
		t.Fatal(err)
	}
	sealKeylogged(t, ln.Addr().String(), &ks.Keys()[0].Config, &kl)
	pcap, keylog = filepath.Join(dir, "c.pcapng"), filepath.Join(dir, "keylog.txt")
	var buf bytes.Buffer
	if err := rec.WritePcapng(&buf); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(pcap, buf.Bytes(), 0o644)
	os.WriteFile(keylog, kl.Bytes(), 0o600)
	return keys, pcap, keylog
}

// sealKeylogged sends a ClientHelloOuter sealed by ech.Seal to addr, reads
// the ServerHello, and logs its ECH lines.
func sealKeylogged(t *testing.T, addr string, cfg *ech.Config, kl *bytes.Buffer) {
	t.Helper()
	tc := &recordConn{}
	tls.Client(tc, &tls.Config{ServerName: "secret.lab.test", MinVersion: tls.VersionTLS13, NextProtos: []string{"h2"}}).Handshake()
	msg, _, err := ech.HandshakeFromRecords(tc.written)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ech.Seal(cfg, msg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := client.WriteECHKeyLog(kl, s, cfg); err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write(s.Record)
	var got []byte
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if _, e := ech.RecordsNeeded(got); e == nil || err != nil {
			return
		}
	}
}

// recordConn keeps what a tls.Client writes and fails its reads.
type recordConn struct {
	net.Conn
	written []byte
}

func (c *recordConn) Write(b []byte) (int, error) {
	c.written = append(c.written, b...)
	return len(b), nil
}
func (c *recordConn) Read([]byte) (int, error)         { return 0, net.ErrClosed }
func (c *recordConn) Close() error                     { return nil }
func (c *recordConn) SetDeadline(time.Time) error      { return nil }
func (c *recordConn) SetReadDeadline(time.Time) error  { return nil }
func (c *recordConn) SetWriteDeadline(time.Time) error { return nil }

type compareFlow struct {
	ECH      string `json:"ech"`
	InnerSNI string `json:"inner_sni"`
	OpenedBy string `json:"ech_opened_by"`
	ConfigID *uint8 `json:"ech_config_id"`
}

// compareJSON runs echlab compare with args and --json, and returns the
// ECH flows by config_id and opener ("by" is "" when closed).
func compareJSON(t *testing.T, args ...string) []compareFlow {
	t.Helper()
	out := filepath.Join(t.TempDir(), "f.jsonl")
	if err := runCompare(append(args, "--json", out)); err != nil {
		t.Fatalf("compare %v: %v", args, err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var flows []compareFlow
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var f compareFlow
		if err := json.Unmarshal([]byte(line), &f); err != nil {
			t.Fatal(err)
		}
		if f.ECH != "" {
			flows = append(flows, f)
		}
	}
	return flows
}

// opened counts the flows opened to secret.lab.test by each opener.
func opened(flows []compareFlow) map[string]int {
	n := map[string]int{}
	for _, f := range flows {
		if f.ECH == observe.ECHReal && f.InnerSNI == "secret.lab.test" {
			n[f.OpenedBy]++
		}
	}
	return n
}

// TestCompareKeysRepeatable: one --keys opens only its set's flows; two
// --keys, or the folder holding both sets, open all three ECH flows.
func TestCompareKeysRepeatable(t *testing.T) {
	keys, capture, _ := twoKeySetCapture(t)
	a, b := filepath.Join(keys, "a"), filepath.Join(keys, "b")
	if got := opened(compareJSON(t, capture, "--keys", a)); got["key"] != 2 {
		t.Errorf("--keys a: opened %v, want 2 (the crypto/tls and the sealed flow to set a)", got)
	}
	if got := opened(compareJSON(t, capture, "--keys", b)); got["key"] != 1 {
		t.Errorf("--keys b: opened %v, want 1", got)
	}
	for _, args := range [][]string{{"--keys", a, "--keys", b}, {"--keys", keys}} {
		flows := compareJSON(t, append([]string{capture}, args...)...)
		if got := opened(flows); len(flows) != 3 || got["key"] != 3 {
			t.Errorf("%v: %d ECH flows, opened %v; want all 3 by key", args, len(flows), got)
		}
	}
	err := runCompare([]string{capture, "--keys", filepath.Join(keys, "esni")})
	if err == nil || !strings.Contains(err.Error(), "no keyset.json") {
		t.Errorf("--keys of a folder without key sets: %v", err)
	}
}

// TestCompareKeylogECH: --keylog alone opens the ClientHelloOuter whose
// ECH_SECRET and ECH_CONFIG it holds, and nothing else.
func TestCompareKeylogECH(t *testing.T) {
	_, capture, keylog := twoKeySetCapture(t)
	flows := compareJSON(t, capture, "--keylog", keylog)
	if got := opened(flows); len(flows) != 3 || got["keylog"] != 1 || got["key"] != 0 {
		t.Errorf("--keylog: %d ECH flows, opened %v; want 1 of 3 by keylog", len(flows), got)
	}
}
