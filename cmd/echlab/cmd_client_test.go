package main

import (
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/internal/pki"
)

// TestClientCommandAgainstServer starts echlab server and fetches from it
// with echlab client and the server's ECHConfigList: ECH is accepted and
// the inner name reaches the server.
func TestClientCommandAgainstServer(t *testing.T) {
	ready := regexp.MustCompile(`^echlab server: https://public\.lab\.test/ \(tcp (127\.0\.0\.1:\d+)`)
	d, addr := startDaemon(t, time.Minute, ready, "server", "--addr", "127.0.0.1:0", "--pki", "pki", "--keys", "keys", "--log", "")
	ks, err := ech.LoadKeySet(filepath.Join(d.dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	list, err := ks.ConfigList()
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(addr, ":")
	r := runCLI(t, "", time.Minute, "client", "--json", "--ca", filepath.Join(d.dir, "pki", pki.CACertFile),
		"--ech-config", "ech="+base64.StdEncoding.EncodeToString(list), "--connect-to", addr,
		"https://secret.lab.test:"+port+"/")
	if r.code != 0 {
		t.Fatalf("echlab client: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	var res struct {
		ECH      string `json:"ech"`
		Status   int    `json:"status"`
		OuterSNI string `json:"outer_sni"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("client JSON: %v\n%s", err, r.stdout)
	}
	if res.ECH != "accepted" || res.Status != 200 || res.OuterSNI != "public.lab.test" {
		t.Errorf("result %s", r.stdout)
	}
	d.stop(t, 10*time.Second)
}

// TestClientCommandFlagErrors checks flag combinations that cannot work.
func TestClientCommandFlagErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--cert", "a.pem"}, "--cert and --key go together"},
		{[]string{"--groups", "nosuch"}, `key exchange group "nosuch"`},
		{[]string{"--ca", "missing.pem"}, "missing.pem"},
	} {
		r := runCLI(t, "", time.Minute, append(append([]string{"client"}, tt.args...), "https://secret.lab.test/")...)
		if r.code != 1 || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("echlab client %v: exit %d, stderr %q (want %q)", tt.args, r.code, r.stderr, tt.want)
		}
	}
	if r := runCLI(t, "", time.Minute, "client"); r.code != 2 {
		t.Errorf("echlab client without a URL: exit %d", r.code)
	}
}

// TestClientCommandErrorsOnce: a fetch that cannot start says so once,
// on stderr, in flag terms (not the Go API's field names); the table on
// stdout keeps the error class only.
func TestClientCommandErrorsOnce(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"https://secret.lab.test/"}, []string{"no resolver configured", "--dns URL", "--connect-to IP[:PORT]"}},
		{[]string{"--connect-to", "127.0.0.1:1", "https://secret.lab.test/"}, []string{"no ECH config found", "--dns URL", "--ech-config VALUE"}},
	} {
		r := runCLI(t, "", time.Minute, append([]string{"client"}, tt.args...)...)
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		if r.code != 1 || len(lines) != 1 || strings.Contains(r.stderr, "ConnectTo") || strings.Contains(r.stderr, "set a resolver") {
			t.Errorf("echlab client %v: exit %d, stderr %q", tt.args, r.code, r.stderr)
		}
		for _, w := range tt.want {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("echlab client %v: stderr lacks %q: %q", tt.args, w, r.stderr)
			}
		}
		if strings.Contains(r.stdout, "no resolver configured") || !strings.Contains(r.stdout, "error class") {
			t.Errorf("echlab client %v: stdout repeats the error or lacks its class:\n%s", tt.args, r.stdout)
		}
	}
}

// TestClientCommandTrustsPKI: without --ca the client trusts pki/ca.crt
// of its working folder (the folder echlab server made), and --pki names
// another folder; a folder without ca.crt leaves a certificate error that
// names the flags.
func TestClientCommandTrustsPKI(t *testing.T) {
	ready := regexp.MustCompile(`^echlab server: https://public\.lab\.test/ \(tcp (127\.0\.0\.1:\d+)`)
	d, addr := startDaemon(t, time.Minute, ready, "server", "--addr", "127.0.0.1:0", "--log", "")
	_, port, _ := strings.Cut(addr, ":")
	url := "https://secret.lab.test:" + port + "/"
	fetch := func(dir string, args ...string) cliResult {
		return runCLI(t, dir, time.Minute, append(append([]string{"client", "--mode", "baseline", "--connect-to", addr}, args...), url)...)
	}
	if r := fetch(d.dir); r.code != 0 {
		t.Errorf("client in the server's folder (pki/ca.crt): exit %d\n%s", r.code, r.stderr)
	}
	if r := fetch("", "--pki", filepath.Join(d.dir, "pki")); r.code != 0 {
		t.Errorf("client --pki DIR: exit %d\n%s", r.code, r.stderr)
	}
	r := fetch("", "--pki", t.TempDir())
	if r.code != 1 || !strings.Contains(r.stderr, "--pki DIR or --ca FILE") || !strings.Contains(r.stdout, "invalid-certificate") {
		t.Errorf("client without the lab CA: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	d.stop(t, 10*time.Second)
}
