package main

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/echlab/echlab/ech"
)

// TestKeygenESNIAlias checks that echlab keygen --esni writes the same
// ESNI key directory as echlab esni keygen, and that echlab ech inspect
// recognises ESNIKeys given as a directory, a TXT value and on stdin,
// while an ECHConfigList is still printed as one.
func TestKeygenESNIAlias(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "esni")
	var out bytes.Buffer
	if err := keygen([]string{"--esni", "--out", dir, "--padded-length", "200"}, &out); err != nil {
		t.Fatalf("keygen --esni: %v\n%s", err, out.String())
	}
	set, err := ech.LoadESNIKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	if set.Keys.PaddedLength != 200 || !strings.Contains(out.String(), set.TXT()) {
		t.Errorf("keygen --esni output:\n%s", out.String())
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
	if rest, on := esniKeygenArgs([]string{"--out", "x", "-esni=false"}); on || len(rest) != 2 {
		t.Errorf("-esni=false: %v %v", rest, on)
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
			t.Errorf("-publish-esni %q accepted", bad)
		}
	}
}
