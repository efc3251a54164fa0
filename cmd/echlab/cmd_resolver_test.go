package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/echlab/echlab/resolver"
)

// TestResolverBadZone checks that a zone file with a bad record stops
// echlab resolver with exit 1 and a message naming the file and line.
func TestResolverBadZone(t *testing.T) {
	dir := t.TempDir()
	zone := "$ORIGIN lab.test.\n$TTL 60\n@ IN SOA ns hostmaster 1 3600 600 86400 60\nwww IN A 127.0.0.1\nbad IN A 999.1.1.1\n"
	if err := os.WriteFile(filepath.Join(dir, "broken.zone"), []byte(zone), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, dir, time.Minute, "resolver", "--zone", "lab.test.=broken.zone",
		"--udp", "127.0.0.1:0", "--tcp", "127.0.0.1:0", "--dot", "", "--doh", "", "--doh3", "", "--doq", "", "--metrics", "")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\nstderr:\n%s", r.code, r.stderr)
	}
	for _, want := range []string{"broken.zone", "line: 5", "999.1.1.1"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
}

// TestResolverFlagsToConfig checks how the flags become a resolver.Config:
// defaults without a config file (the lab CA in --pki pki), and the
// encrypted listeners turned off (in a fixed order of notes) with --pki ”
// and no --cert.
func TestResolverFlagsToConfig(t *testing.T) {
	fs, f := newResolverFlags()
	if err := parse(fs, []string{"--zone", "z.zone"}); err != nil {
		t.Fatal(err)
	}
	cfg, notes, err := f.toConfig(fs)
	if err != nil {
		t.Fatal(err)
	}
	defaults := resolver.Listen{UDP: defaultDo53, TCP: defaultDo53, DoT: defaultDoT, DoH: defaultDoH, DoH3: defaultDoH,
		DoQ: defaultDoQ, Metrics: defaultMetrics}
	if cfg.TLS.CADir != "pki" || cfg.Listen != defaults || len(notes) != 0 {
		t.Errorf("defaults: CA folder %q, listen %+v, notes %q", cfg.TLS.CADir, cfg.Listen, notes)
	}

	fs, f = newResolverFlags()
	args := []string{"--zone", "lab.test.=z.zone", "--zone", "other.zone", "--keyset", "main=keys",
		"--publish", "secret.lab.test,keyset=main", "--doh", "127.0.0.1:0", "--log", "-", "--pki", ""}
	if err := parse(fs, args); err != nil {
		t.Fatal(err)
	}
	cfg, notes, err = f.toConfig(fs)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Zones) != 2 || cfg.Zones[0] != (resolver.ZoneFile{Origin: "lab.test.", File: "z.zone"}) ||
		cfg.Zones[1] != (resolver.ZoneFile{File: "other.zone"}) {
		t.Errorf("zones %+v", cfg.Zones)
	}
	if cfg.KeySets["main"] != "keys" || len(cfg.Publish) != 1 || cfg.Publish[0].KeySet != "main" || cfg.QueryLogFile != "-" {
		t.Errorf("config %+v", cfg)
	}
	want := resolver.Listen{UDP: defaultDo53, TCP: defaultDo53, DoH: "127.0.0.1:0", Metrics: defaultMetrics}
	if cfg.Listen != want {
		t.Errorf("listen %+v, want %+v", cfg.Listen, want)
	}
	wantNotes := "--dot off: give --pki DIR or --cert/--key to serve it|--doh3 off: give --pki DIR or --cert/--key to serve it|" +
		"--doq off: give --pki DIR or --cert/--key to serve it"
	if got := strings.Join(notes, "|"); got != wantNotes {
		t.Errorf("notes %q", got)
	}

	fs, f = newResolverFlags()
	if err := parse(fs, []string{"--keyset", "nodir"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.toConfig(fs); err == nil || !strings.Contains(err.Error(), `--keyset "nodir"`) {
		t.Errorf("bad --keyset: %v", err)
	}

	// The old spellings -ca-dir and -querylog still work, unlisted.
	fs, f = newResolverFlags()
	if err := parse(fs, []string{"-ca-dir", "ca", "-querylog", "q.jsonl"}); err != nil {
		t.Fatal(err)
	}
	if cfg, _, err = f.toConfig(fs); err != nil || cfg.TLS.CADir != "ca" || cfg.QueryLogFile != "q.jsonl" {
		t.Errorf("old spellings: %+v, %v", cfg, err)
	}
}

// TestResolverConfigFileAndTLSECH: a JSON config file, with flags on top;
// --tls-ech names the key set the encrypted listeners use for ECH.
func TestResolverConfigFileAndTLSECH(t *testing.T) {
	file := filepath.Join(t.TempDir(), "resolver.json")
	js := `{"zones": [{"file": "z.zone"}], "keysets": {"main": "keys"}, "listen": {"dot": "127.0.0.1:0"},
		"tls": {"ca_dir": "pki"}, "poll_interval": "250ms"}`
	if err := os.WriteFile(file, []byte(js), 0o644); err != nil {
		t.Fatal(err)
	}
	fs, f := newResolverFlags()
	if err := parse(fs, []string{"--config", file, "--tls-ech", "main", "--udp", "127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	cfg, notes, err := f.toConfig(fs)
	if err != nil {
		t.Fatal(err)
	}
	want := resolver.Listen{UDP: "127.0.0.1:0", DoT: "127.0.0.1:0"}
	if cfg.Listen != want || cfg.TLS.CADir != "pki" || cfg.TLS.ECHKeySet != "main" || len(notes) != 0 ||
		cfg.PollInterval != resolver.Duration(250*time.Millisecond) || cfg.Zones[0].File != "z.zone" {
		t.Errorf("config %+v, notes %q", cfg, notes)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	cfg.TLS.ECHKeySet = "other"
	if err := cfg.Validate(); !errors.Is(err, resolver.ErrConfig) {
		t.Errorf("unknown --tls-ech key set: %v", err)
	}
}

// TestResolverNeedsZone: without a zone (nor --forward) the resolver does
// not start to answer REFUSED to everything; it says what to give, in one
// line, and exits 2.
func TestResolverNeedsZone(t *testing.T) {
	r := runCLI(t, "", time.Minute, "resolver", "--udp", "127.0.0.1:0", "--tcp", "127.0.0.1:0", "--pki", "",
		"--dot", "", "--doh", "", "--doh3", "", "--doq", "", "--metrics", "")
	if r.code != 2 || strings.TrimSpace(r.stderr) != "echlab resolver: give at least one --zone FILE (or --forward URL)" {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
}
