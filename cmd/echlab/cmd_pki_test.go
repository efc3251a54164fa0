package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPKICommand: echlab pki makes the lab CA in --pki (default pki) with
// the key 0600 and issues the certificates asked for; --out, the old
// spelling, still works.
func TestPKICommand(t *testing.T) {
	dir := t.TempDir()
	if r := runCLI(t, dir, time.Minute, "pki", "--client", "alice"); r.code != 0 || !strings.Contains(r.stdout, "ca pki/ca.crt") {
		t.Fatalf("echlab pki: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, f := range []string{"pki/ca.crt", "pki/alice.crt"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	if st, err := os.Stat(filepath.Join(dir, "pki", "ca.key")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("ca.key: %v %v", st, err)
	}
	r := runCLI(t, dir, time.Minute, "pki", "--pki", "other", "--server-names", "resolver.lab.test")
	if _, err := os.Stat(filepath.Join(dir, "other", "server.crt")); r.code != 0 || err != nil {
		t.Errorf("echlab pki --pki other: exit %d, %v\n%s", r.code, err, r.stderr)
	}
	if r := runCLI(t, dir, time.Minute, "pki", "--out", "old"); r.code != 0 || !strings.Contains(r.stdout, "ca old/ca.crt") {
		t.Errorf("echlab pki --out: exit %d\n%s", r.code, r.stderr)
	}
}

// TestPlayNeedsCA: play without a lab CA (no pki/ca.crt, no --ca) says
// which flags give one, and with one an unknown transport is named; each
// in one line, with exit 2.
func TestPlayNeedsCA(t *testing.T) {
	r := runCLI(t, "", time.Minute, "play", "--dns", "doh=https://127.0.0.1:1/dns-query", "--ready-timeout", "0")
	if r.code != 2 || strings.TrimSpace(r.stderr) != "echlab play: no lab CA: pki/ca.crt does not exist; give --pki DIR (holding ca.crt) or --ca FILE" {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
	dir := t.TempDir()
	if r := runCLI(t, dir, time.Minute, "pki"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	r = runCLI(t, dir, time.Minute, "play", "--dns", "doh=https://127.0.0.1:1/dns-query", "--transports", "doh,bogus")
	if r.code != 2 || strings.TrimSpace(r.stderr) != `echlab play: --transports: unknown transport "bogus" (valid: do53,dot,doh,doh3,doq)` {
		t.Errorf("play --transports bogus: exit %d, stderr %q", r.code, r.stderr)
	}
}
