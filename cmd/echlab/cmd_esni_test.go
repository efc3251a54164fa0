package main

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/echlab/echlab/ech"
)

// cloudflareESNI is the 0xff01 value Cloudflare served at
// _esni.www.cloudflare.com on 2018-11-21 (sftcd/openssl esnistuff/doit.sh).
const cloudflareESNI = "/wEU528gACQAHQAguwSAYz57kzOUzDXCAZ7aBJLWPrQwvSuNsRZbi7JzqkYAAhMBAQQAAAAAW/E4IAAAAABb+SEgAAA="

func TestESNIKeygenInspect(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "esni")
	var out bytes.Buffer
	err := esniCmd([]string{"keygen", "--keys", dir, "--public-name", "public.lab.test", "--padded-length", "128",
		"--valid", "2h", "--groups", "x25519,p256", "--suites", "aes128gcm,chacha20poly1305", "--address-set", "127.0.0.1"},
		nil, &out, &out)
	if err != nil {
		t.Fatalf("keygen: %v\n%s", err, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], `_esni.public.lab.test. 720 IN TXT "`) {
		t.Fatalf("keygen output:\n%s", out.String())
	}
	printed, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil {
		t.Fatal(err)
	}
	set, err := ech.LoadESNIKeys(dir)
	if err != nil || !bytes.Equal(set.Keys.Raw, printed) {
		t.Fatalf("printed value is not the saved keys: %v", err)
	}
	if k := set.Keys; k.PaddedLength != 128 || len(k.Keys) != 2 || len(k.CipherSuites) != 2 || k.NotAfter-k.NotBefore != 7200 {
		t.Fatalf("keys %+v", k)
	}
	if err := esniCmd([]string{"keygen", "--keys", dir}, nil, &out, &out); err == nil {
		t.Fatal("keygen overwrote existing keys without --force")
	}
	for _, arg := range []string{dir, filepath.Join(dir, ech.ESNIKeyFile), filepath.Join(dir, ech.ESNITXTFile), lines[2]} {
		out.Reset()
		if err := esniCmd([]string{"inspect", arg}, nil, &out, &out); err != nil {
			t.Fatalf("inspect %s: %v\n%s", arg, err, out.String())
		}
		for _, want := range []string{"version:       0xff02", "checksum:      ", " OK", "public_name:   public.lab.test",
			"group 0x001d x25519", "group 0x0017 secp256r1", "padded_length: 128", "address_set: [127.0.0.1] OK", "usable:        OK"} {
			if !strings.Contains(out.String(), want) {
				t.Fatalf("inspect %s lacks %q:\n%s", arg, want, out.String())
			}
		}
	}
}

func TestESNIInspectChecks(t *testing.T) {
	var out bytes.Buffer
	err := esniCmd([]string{"inspect", cloudflareESNI}, nil, &out, &out)
	if !errors.Is(err, ech.ErrESNIExpired) || !strings.Contains(out.String(), "checksum:      14e76f20 OK") {
		t.Fatalf("expired real value: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := esniCmd([]string{"inspect", "--now", "2018-11-20T00:00:00Z", cloudflareESNI}, nil, &out, &out); err != nil {
		t.Fatalf("inside the window: %v\n%s", err, out.String())
	}
	raw, _ := base64.StdEncoding.DecodeString(cloudflareESNI)
	raw[20] ^= 1 // inside the key_exchange
	file := filepath.Join(t.TempDir(), "bad.bin")
	os.WriteFile(file, raw, 0o644)
	out.Reset()
	err = esniCmd([]string{"inspect", "--now", "2018-11-20T00:00:00Z", file}, nil, &out, &out)
	if !errors.Is(err, ech.ErrESNIChecksum) || !strings.Contains(out.String(), "BAD") {
		t.Fatalf("tampered value: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := esniCmd([]string{"inspect", "-"}, strings.NewReader(`"`+cloudflareESNI+`"`), &out, &out); !errors.Is(err, ech.ErrESNIExpired) {
		t.Fatalf("stdin: %v", err)
	}
	if err := esniCmd([]string{"frobnicate"}, nil, &out, &out); err != errUsage {
		t.Fatalf("unknown subcommand: %v", err)
	}
}
