package main

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/echlab/echlab/ech"
)

var echValueRE = regexp.MustCompile(`(?m)^ech=(\S+)$`)

// runKeygenTest runs echlab keygen and returns the printed ech= value.
func runKeygenTest(t *testing.T, args ...string) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := keygen(args, &out); err != nil {
		t.Fatalf("keygen %v: %v", args, err)
	}
	m := echValueRE.FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no ech= line in:\n%s", out.String())
	}
	b, err := base64.StdEncoding.DecodeString(m[1])
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestKeygenAndRotate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	printed := runKeygenTest(t, "--keys", dir, "--kem", "x25519,xwing", "--kdf", "hkdf-sha256,hkdf-sha384",
		"--aead", "aes128gcm,chacha20poly1305", "--public-name", "public.lab.test", "--max-name-length", "64")
	ks, err := ech.LoadKeySet(dir)
	if err != nil {
		t.Fatal(err)
	}
	list, _ := ks.ConfigList()
	if !bytes.Equal(printed, list) {
		t.Fatal("printed ech= value is not the saved set's published list")
	}
	keys := ks.Keys()
	if len(keys) != 2 || keys[0].Config.KEM != ech.KEMX25519HKDFSHA256 || keys[1].Config.KEM != ech.KEMXWing {
		t.Fatalf("keys not in --kem order: %+v", keys)
	}
	for _, k := range keys {
		if len(k.Config.CipherSuites) != 4 || k.Config.MaximumNameLength != 64 {
			t.Fatalf("config %+v", k.Config)
		}
	}

	var out bytes.Buffer
	if err := keygen([]string{"--keys", dir}, &out); err == nil {
		t.Fatal("keygen over an existing set without --rotate succeeded")
	}

	rotated := runKeygenTest(t, "--keys", dir, "--rotate", "--grace", "1h", "--kem", "p256", "--config-id", "77")
	ks, _ = ech.LoadKeySet(dir)
	e := ks.Entries()
	if len(e) != 3 || !e[0].Published || e[1].Published || e[2].Published || e[0].Key.Config.ConfigID != 77 {
		t.Fatalf("after rotation: %+v", e)
	}
	want, _ := ech.MarshalConfigList(e[0].Key.Config.Raw)
	if !bytes.Equal(rotated, want) {
		t.Fatal("after rotation the printed list is not just the new key")
	}
	if err := keygen([]string{"--keys", dir, "--rotate", "--config-id", "77"}, &out); err == nil {
		t.Fatal("a used --config-id was accepted")
	}
}

func TestKeygenBadFlags(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"--keys", dir, "--kem", "rsa"},
		{"--keys", dir, "--aead", "des"},
		{"--keys", dir, "--config-id", "256"},
		{"--keys", dir, "--kem", "x25519,p256", "--config-id", "3"},
		{"--keys", dir, "--max-name-length", "300"},
		{"--keys", dir, "--public-name", "192.0.2.1"},
		{"--keys", dir, "--count", "0"},
		{"--keys", filepath.Join(dir, "missing"), "--rotate"},
		{"--keys", ""},
		{"--out", dir, "--keys", "3"},
	} {
		if err := keygen(args, new(bytes.Buffer)); err == nil {
			t.Errorf("keygen %v succeeded", args)
		}
	}
}

// goTLSList is an ECHConfigList from Go's crypto/tls tests: an unknown
// version first, then three configs, the last with mandatory extension 0xaaaa.
const goTLSList = "0105badd00050504030201fe0d0066000010004104e62b69e2bf659f97be2f1e0d948a4cd5976bb7a91e0d46fbdda9a91e9ddcba5a01e7d697a80a18f9c3c4a31e56e27c8348db161a1cf51d7ef1942d4bcf7222c1000c000100010001000200010003400e7075626c69632e6578616d706c650000fe0d003d00002000207d661615730214aeee70533366f36a609ead65c0c208e62322346ab5bcd8de1c000411112222400e7075626c69632e6578616d706c650000fe0d004d000020002085bd6a03277c25427b52e269e0c77a8eb524ba1eb3d2f132662d4b0ac6cb7357000c000100010001000200010003400e7075626c69632e6578616d706c650008aaaa000474657374"

func inspect(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	if err := echCmd(append([]string{"inspect"}, args...), strings.NewReader(stdin), &out, new(bytes.Buffer)); err != nil {
		t.Fatalf("ech inspect %v: %v", args, err)
	}
	return out.String()
}

func TestEchInspectFields(t *testing.T) {
	raw, _ := hex.DecodeString(goTLSList)
	b64 := base64.StdEncoding.EncodeToString(raw)
	out := inspect(t, "", "ech="+b64)
	for _, want := range []string{
		"3 config(s) of version 0xfe0d, 1 skipped",
		"[0] skipped: version 0xbadd",
		"version:             0xfe0d",
		"kem_id:              0x0010 DHKEM(P-256, HKDF-SHA256)",
		"public_key:          65 bytes 04e62b69",
		"kdf_id 0x0001 HKDF-SHA256  aead_id 0x0003 ChaCha20-Poly1305",
		"kdf_id 0x1111 unknown",
		"maximum_name_length: 64",
		"public_name:         public.example",
		"type 0xaaaa MANDATORY",
		"4 bytes 74657374",
		"ech=" + b64,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Index(out, "[0] skipped") > strings.Index(out, "[1] ECHConfig") {
		t.Error("skipped config not printed in list position")
	}
}

func TestEchInspectInputs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	printed := runKeygenTest(t, "--keys", dir, "--kem", "p384")
	b64 := base64.StdEncoding.EncodeToString(printed)
	entries, _ := os.ReadDir(dir)
	var pemFile string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".pem") {
			pemFile = filepath.Join(dir, e.Name())
		}
	}
	rawFile := filepath.Join(t.TempDir(), "list.bin")
	os.WriteFile(rawFile, printed, 0o644)
	for name, args := range map[string][]string{
		"base64": {b64}, "quoted ech=": {`ech="` + b64 + `"`}, "PEM file": {pemFile},
		"key-set dir": {dir}, "raw file": {rawFile}, "stdin": {"-"},
	} {
		out := inspect(t, "ech="+b64+"\n", args...)
		if !strings.Contains(out, "ech="+b64) || !strings.Contains(out, "DHKEM(P-384, HKDF-SHA384)") {
			t.Errorf("%s: output:\n%s", name, out)
		}
		if strings.Contains(out, "PRIVATE") {
			t.Errorf("%s: output mentions the private key", name)
		}
	}
	if err := echCmd([]string{"inspect", "AAAA"}, strings.NewReader(""), new(bytes.Buffer), new(bytes.Buffer)); err == nil {
		t.Error("garbage value accepted")
	}
}

func TestEchUsage(t *testing.T) {
	var stderr bytes.Buffer
	if err := echCmd(nil, strings.NewReader(""), new(bytes.Buffer), &stderr); !errors.Is(err, errUsage) || !strings.Contains(stderr.String(), "inspect") {
		t.Fatalf("no subcommand: %v %q", err, stderr.String())
	}
	stderr.Reset()
	if err := echCmd([]string{"frobnicate"}, strings.NewReader(""), new(bytes.Buffer), &stderr); !errors.Is(err, errUsage) || !strings.Contains(stderr.String(), "unknown subcommand") {
		t.Fatalf("unknown subcommand: %v %q", err, stderr.String())
	}
}
