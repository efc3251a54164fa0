package main

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/echlab/echlab/ech"
)

// TestEchInspectESNI checks that echlab ech inspect recognises the ESNIKeys
// that echlab esni keygen --keys DIR writes, given as the folder, a TXT
// value and on stdin, while an ECHConfigList is still printed as one.
func TestEchInspectESNI(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "esni")
	var out bytes.Buffer
	if err := esniCmd([]string{"keygen", "--keys", dir, "--padded-length", "200"}, nil, &out, &out); err != nil {
		t.Fatalf("esni keygen: %v\n%s", err, out.String())
	}
	set, err := ech.LoadESNIKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	if set.Keys.PaddedLength != 200 || !strings.Contains(out.String(), set.TXT()) {
		t.Errorf("esni keygen output:\n%s", out.String())
	}
	if fi, err := os.Stat(filepath.Join(dir, ech.ESNIKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("esni.pem: %v %v", fi, err)
	}
	for name, tc := range map[string]struct{ stdin, arg string }{
		"dir": {"", dir}, "value": {"", set.TXT()}, "stdin": {set.TXT() + "\n", "-"},
	} {
		got := inspect(t, tc.stdin, tc.arg)
		if !strings.Contains(got, "ESNIKeys, 85 bytes") || !strings.Contains(got, "padded_length: 200") ||
			!strings.Contains(got, "TXT "+set.TXT()) {
			t.Errorf("%s: ech inspect of ESNIKeys:\n%s", name, got)
		}
	}
	raw, _ := hex.DecodeString(goTLSList)
	if got := inspect(t, base64.StdEncoding.EncodeToString(raw), "-"); !strings.Contains(got, "ECHConfigList") || strings.Contains(got, "ESNIKeys") {
		t.Errorf("ECHConfigList on stdin:\n%s", got)
	}
}

// TestKeygenHasNoESNIFlag: keygen --esni, a duplicate of esni keygen, is
// gone; the binary refuses it as an unknown flag (exit 2).
func TestKeygenHasNoESNIFlag(t *testing.T) {
	r := runCLI(t, "", time.Minute, "keygen", "--esni", "--keys", "esni")
	if r.code != 2 || !strings.Contains(r.stderr, "flag provided but not defined: -esni") {
		t.Errorf("keygen --esni: exit %d\n%s", r.code, r.stderr)
	}
}

func TestResolverESNIFlags(t *testing.T) {
	fs, f := newResolverFlags()
	if err := parse(fs, []string{"--esni-keyset", "legacy=keys", "--publish-esni", "secret.lab.test,keyset=legacy,ttl=30"}); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := f.toConfig(fs)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ESNIKeySets["legacy"] != "keys" || len(cfg.PublishESNI) != 1 ||
		cfg.PublishESNI[0].Name != "secret.lab.test" || cfg.PublishESNI[0].KeySet != "legacy" || cfg.PublishESNI[0].TTL != 30 {
		t.Errorf("config %+v %+v", cfg.ESNIKeySets, cfg.PublishESNI)
	}
	for _, bad := range []string{"secret.lab.test", "secret.lab.test,keyset=k,port=1", "x,keyset=k,ttl=-1", ",keyset=k"} {
		if _, err := parsePublishESNI(bad); err == nil {
			t.Errorf("--publish-esni %q accepted", bad)
		}
	}
}
