package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/internal/pki"
	"github.com/echlab/echlab/internal/testutil"
	"github.com/echlab/echlab/server"
)

// startDaemonStderr is startDaemon keeping all of the daemon's stderr.
func startDaemonStderr(t *testing.T, ready *regexp.Regexp, args ...string) (*daemon, string, *testutil.SyncBuffer) {
	t.Helper()
	cmd := exec.Command(echlabBin, args...)
	cmd.Dir = t.TempDir()
	stderr := &testutil.SyncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemon{cmd: cmd, dir: cmd.Dir, done: make(chan error, 1)}
	t.Cleanup(func() { cmd.Process.Kill() }) //nolint:errcheck // it may have exited
	go func() { d.done <- cmd.Wait() }()
	deadline := time.Now().Add(time.Minute)
	for {
		for _, line := range strings.Split(stderr.String(), "\n") {
			if m := ready.FindStringSubmatch(line); m != nil {
				return d, m[1], stderr
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("echlab %q printed no line matching %s:\n%s", args, ready, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitStderr waits up to 10 s for the daemon to print want.
func waitStderr(t *testing.T, stderr *testutil.SyncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stderr.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("stderr lacks %q:\n%s", want, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// echHandshake makes one crypto/tls handshake for secret.lab.test with
// list and returns whether ECH was accepted, or the retry configs of a
// rejection.
func echHandshake(t *testing.T, addr string, pool *x509.CertPool, list []byte) (bool, []byte) {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{ServerName: "secret.lab.test", RootCAs: pool,
		EncryptedClientHelloConfigList: list})
	if err == nil {
		ok := c.ConnectionState().ECHAccepted
		c.Close()
		return ok, nil
	}
	var rej *tls.ECHRejectionError
	if !errors.As(err, &rej) {
		t.Fatalf("handshake with %s: %v", addr, err)
	}
	return false, rej.RetryConfigList
}

// checkFollowsKeygen rotates the keys folder of a running server or split
// at addr with 'echlab keygen --keys keys --rotate --grace 0', as the
// README says, run in cwd: the front must accept the new config and
// reject the old one with the new one (only) as retry config.
func checkFollowsKeygen(t *testing.T, cwd, keys, addr string, pool *x509.CertPool) []byte {
	t.Helper()
	ks, err := ech.LoadKeySet(filepath.Join(cwd, keys))
	if err != nil {
		t.Fatal(err)
	}
	old, _ := ks.ConfigList()
	if ok, retry := echHandshake(t, addr, pool, old); !ok {
		t.Fatalf("first config rejected (retry %x)", retry)
	}
	r := runCLI(t, cwd, time.Minute, "keygen", "--keys", keys, "--rotate", "--grace", "0")
	m := regexp.MustCompile(`(?m)^ech=(\S+)$`).FindStringSubmatch(r.stdout)
	if r.code != 0 || m == nil {
		t.Fatalf("keygen --rotate: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	fresh, err := base64.StdEncoding.DecodeString(m[1])
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for {
		ok, retry := echHandshake(t, addr, pool, fresh)
		if ok {
			break
		}
		if time.Since(start) > 15*time.Second {
			t.Fatalf("the rotated config is still rejected after %v (retry %x)", time.Since(start), retry)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("rotated config accepted %v after keygen returned", time.Since(start).Round(time.Millisecond))
	ok, retry := echHandshake(t, addr, pool, old)
	if ok {
		t.Fatal("the config replaced with --grace 0 is still accepted")
	}
	if !bytes.Equal(retry, fresh) {
		t.Fatalf("retry configs %x, want the rotated list %x", retry, fresh)
	}
	return fresh
}

func TestServerFollowsKeygenRotate(t *testing.T) {
	ready := regexp.MustCompile(`^echlab server: https://public\.lab\.test/ \(tcp (127\.0\.0\.1:\d+)`)
	d, addr, stderr := startDaemonStderr(t, ready, "server", "--addr", "127.0.0.1:0", "--pki", "pki", "--keys", "keys", "--log", "", "--poll", "20ms")
	pool, err := pki.LoadPool(filepath.Join(d.dir, "pki", pki.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	fresh := checkFollowsKeygen(t, d.dir, "keys", addr, pool)
	waitStderr(t, stderr, "echlab server: key set keys reloaded: 1 keys added, 1 removed")

	// A broken folder is reported and the last good keys stay in use.
	manifest := filepath.Join(d.dir, "keys", ech.KeySetManifest)
	good, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(manifest, good[:len(good)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	waitStderr(t, stderr, "key set not reloaded from keys")
	if ok, retry := echHandshake(t, addr, pool, fresh); !ok {
		t.Fatalf("the last good config is rejected while the folder is broken (retry %x)", retry)
	}
	if code := d.stop(t, 10*time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0", code)
	}
}

// TestServerLeavesRotatedFolderAlone: a server without --rotate-every
// follows the folder but never writes it, not even when a replaced key's
// grace ends (a write could undo a rotation it has not read yet).
func TestServerLeavesRotatedFolderAlone(t *testing.T) {
	ready := regexp.MustCompile(`^echlab server: https://public\.lab\.test/ \(tcp (127\.0\.0\.1:\d+)`)
	d, _, stderr := startDaemonStderr(t, ready, "server", "--addr", "127.0.0.1:0", "--pki", "pki", "--keys", "keys", "--log", "", "--poll", "20ms")
	if r := runCLI(t, d.dir, time.Minute, "keygen", "--keys", "keys", "--rotate", "--grace", "300ms"); r.code != 0 {
		t.Fatalf("keygen --rotate: exit %d\n%s", r.code, r.stderr)
	}
	manifest := filepath.Join(d.dir, "keys", ech.KeySetManifest)
	written, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	waitStderr(t, stderr, "echlab server: key set keys reloaded: 1 keys added")
	time.Sleep(time.Second) // the grace ends meanwhile
	if now, _ := os.ReadFile(manifest); !bytes.Equal(now, written) {
		t.Errorf("the server rewrote the folder keygen rotated:\n%s\nwas:\n%s", now, written)
	}
	if code := d.stop(t, 10*time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0", code)
	}
}

func TestSplitFollowsKeygenRotate(t *testing.T) {
	cwd := t.TempDir()
	ca, err := pki.LoadOrCreate(filepath.Join(cwd, "pki"))
	if err != nil {
		t.Fatal(err)
	}
	backend, err := server.Start(server.Config{CA: ca, Names: []string{"secret.lab.test"}, Mode: "split-backend"})
	if err != nil {
		t.Fatal(err)
	}
	defer backend.Close()
	ready := regexp.MustCompile(`^echlab split: (127\.0\.0\.1:\d+), routes `)
	keys := filepath.Join(cwd, "keys")
	d, addr := startDaemon(t, time.Minute, ready, "split", "--addr", "127.0.0.1:0", "--pki", filepath.Join(cwd, "pki"), "--keys", keys,
		"--route", "secret.lab.test="+backend.Addr(), "--log", "", "--poll", "20ms")
	checkFollowsKeygen(t, cwd, "keys", addr, ca.Pool())
	if code := d.stop(t, 10*time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0", code)
	}
}

// TestKeysPollFlag checks the --poll default the README states.
func TestKeysPollFlag(t *testing.T) {
	for _, cmd := range []string{"server", "split"} {
		r := runCLI(t, "", time.Minute, "help", cmd)
		out := r.stdout + r.stderr
		_, help, _ := strings.Cut(out, "-poll duration\n")
		help, _, _ = strings.Cut(help, "\n  -")
		if !strings.Contains(help, "(default 500ms)") {
			t.Errorf("echlab help %s: no --poll flag with default 500ms:\n%s", cmd, out)
		}
	}
}
