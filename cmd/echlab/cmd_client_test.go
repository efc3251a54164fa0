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
	d, addr := startDaemon(t, time.Minute, ready, "server", "--pki", "pki", "--keys", "keys", "--log", "")
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
