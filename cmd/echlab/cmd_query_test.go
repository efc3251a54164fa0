package main

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/resolver"
)

// startQueryResolver starts a resolver on loopback (Do53 UDP and DoT)
// serving a zone whose HTTPS record carries the ech= value of a fresh
// key with config id 42; it returns the resolver.
func startQueryResolver(t *testing.T) *resolver.Running {
	t.Helper()
	k, err := ech.GenerateKey(ech.KeyOptions{PublicName: "public.lab.test", ConfigID: 42})
	if err != nil {
		t.Fatal(err)
	}
	list, err := ech.MarshalConfigList(k.Config.Raw)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	zone := fmt.Sprintf("$ORIGIN lab.test.\n$TTL 60\n@ IN SOA ns hostmaster 1 3600 600 86400 60\n"+
		"secret IN A 127.0.0.1\nsecret IN HTTPS 1 . alpn=h2 ech=%s\n", base64.StdEncoding.EncodeToString(list))
	file := filepath.Join(dir, "lab.test.zone")
	if err := os.WriteFile(file, []byte(zone), 0o644); err != nil {
		t.Fatal(err)
	}
	run, err := resolver.Start(resolver.Config{Zones: []resolver.ZoneFile{{File: file, Origin: "lab.test."}},
		Listen: resolver.Listen{UDP: "127.0.0.1:0", DoT: "127.0.0.1:0"},
		TLS:    resolver.TLSFiles{CADir: filepath.Join(dir, "pki")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { run.Close() })
	return run
}

// TestQueryCommand asks the resolver over Do53 and DoT (trusting the lab
// CA by --ca FILE and by --pki DIR) through the binary and checks the
// dig-style answer and the decoded ech= value.
func TestQueryCommand(t *testing.T) {
	run := startQueryResolver(t)
	for _, args := range [][]string{
		{"query", "@udp://" + run.Addr("udp").String(), "secret.lab.test", "HTTPS"},
		{"query", "--ca", run.CAFile, "--sni", "localhost", "@tls://" + run.Addr("dot").String(), "secret.lab.test", "HTTPS"},
		{"query", "--pki", filepath.Dir(run.CAFile), "--sni", "localhost", "@tls://" + run.Addr("dot").String(), "secret.lab.test", "HTTPS"},
	} {
		r := runCLI(t, "", time.Minute, args...)
		if r.code != 0 {
			t.Fatalf("echlab %q: exit %d\n%s", args, r.code, r.stderr)
		}
		for _, want := range []string{";; ANSWER SECTION:", "secret.lab.test.\t60\tIN\tHTTPS\t1 . alpn=\"h2\" ech=",
			";; ECH CONFIGS of secret.lab.test.:", "config_id 42", "public_name public.lab.test"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("echlab %q: output lacks %q:\n%s", args, want, r.stdout)
			}
		}
	}
}

// TestQueryCommandErrors checks the exit status of a missing name and of
// a server that does not answer.
func TestQueryCommandErrors(t *testing.T) {
	run := startQueryResolver(t)
	if r := runCLI(t, "", time.Minute, "query", "@udp://"+run.Addr("udp").String()); r.code != 2 {
		t.Errorf("query without a name: exit %d\n%s", r.code, r.stderr)
	}
	r := runCLI(t, "", time.Minute, "query", "--timeout", "300ms", "@tls://"+run.Addr("udp").String(), "secret.lab.test")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "echlab: ") {
		t.Errorf("query to a silent DoT port: exit %d\n%s", r.code, r.stderr)
	}
}
