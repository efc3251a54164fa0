package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/internal/pki"
	"github.com/echlab/echlab/server"
)

// TestFrontSecretFlag runs `echlab server --front-secret F` behind
// `echlab split --front-secret F`, as the README and `help split` say: the
// file is created 0600 with 32 random bytes by the first, read by the
// second, and an ECH connection through the split is logged and shown by
// the backend as accepted with the outer SNI. The unix case puts the
// backend on a Unix socket (--addr unix:PATH, --route NAME=unix:PATH), as
// the README's split section says.
func TestFrontSecretFlag(t *testing.T) {
	t.Run("tcp", func(t *testing.T) { frontSecretFlag(t, false) })
	t.Run("unix", func(t *testing.T) { frontSecretFlag(t, true) })
}

func frontSecretFlag(t *testing.T, unix bool) {
	cwd := t.TempDir()
	pkiDir, secret, keys := filepath.Join(cwd, "pki"), filepath.Join(cwd, "state", "front.secret"), filepath.Join(cwd, "keys")
	logFile := filepath.Join(cwd, "backend.jsonl")
	ca, err := pki.LoadOrCreate(pkiDir)
	if err != nil {
		t.Fatal(err)
	}
	addr, addrRE := "127.0.0.1:0", `tcp (127\.0\.0\.1:\d+)`
	if unix {
		addr, addrRE = "unix:"+filepath.Join(cwd, "backend.sock"), `(unix:[^,)]+)`
	}
	_, backend := startDaemon(t, time.Minute, regexp.MustCompile(`^echlab server: https://public\.lab\.test/ \(`+addrRE),
		"server", "--addr", addr, "--pki", pkiDir, "--front-secret", secret, "--log", logFile)
	if unix && backend != addr {
		t.Fatalf("server printed %q, want %q", backend, addr)
	}
	st, err := os.Stat(secret)
	if err != nil || st.Mode().Perm() != 0o600 || st.Size() != server.FrontSecretSize {
		t.Fatalf("front secret file: %v, %v", st, err)
	}
	_, front := startDaemon(t, time.Minute, regexp.MustCompile(`^echlab split: (127\.0\.0\.1:\d+), routes `),
		"split", "--addr", "127.0.0.1:0", "--pki", pkiDir, "--keys", keys, "--route", "secret.lab.test="+backend, "--front-secret", secret,
		"--log", "", "--idle-timeout", "30s", "--read-timeout", "2s")
	ks, err := ech.LoadKeySet(keys)
	if err != nil {
		t.Fatal(err)
	}
	list, err := ks.ConfigList()
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{ServerName: "secret.lab.test", RootCAs: ca.Pool(), EncryptedClientHelloConfigList: list, NextProtos: []string{"http/1.1"}}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg,
		DialTLSContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&tls.Dialer{Config: cfg}).DialContext(ctx, "tcp", front)
		}}}
	resp, err := c.Get("https://secret.lab.test/api/conn")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var in server.ConnInfo
	if err := json.Unmarshal(body, &in); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	if !resp.TLS.ECHAccepted || in.ECH != server.ECHAccepted || in.OuterSNI != "public.lab.test" || in.InnerSNI != "secret.lab.test" ||
		in.Front != server.FrontVerified {
		t.Errorf("backend says %+v", in.ConnRecord)
	}
	log, _ := os.ReadFile(logFile)
	if !regexp.MustCompile(`"ech":"accepted"`).Match(log) {
		t.Errorf("backend log:\n%s", log)
	}
}

// TestSplitTimeoutFlags checks the flags and defaults the README states
// for echlab split: --read-timeout 5s, --idle-timeout 60s, --front-secret;
// and --front-secret on echlab server.
func TestSplitTimeoutFlags(t *testing.T) {
	for cmd, want := range map[string][]string{
		"split":  {"-read-timeout duration", "-idle-timeout duration", "-front-secret string"},
		"server": {"-front-secret string"},
	} {
		r := runCLI(t, "", time.Minute, "help", cmd)
		out := r.stdout + r.stderr
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("echlab help %s lacks %q:\n%s", cmd, w, out)
			}
		}
	}
	if r := runCLI(t, "", time.Minute, "help", "split"); !regexp.MustCompile(`-read-timeout duration\n[^-]*\(default 5s\)`).MatchString(r.stdout+r.stderr) ||
		!regexp.MustCompile(`-idle-timeout duration\n[^-]*\(default 1m0s\)`).MatchString(r.stdout+r.stderr) {
		t.Errorf("echlab help split: timeouts without their defaults:\n%s", r.stdout+r.stderr)
	}
}
