package main

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/echlab/echlab/ech"
	"golang.org/x/crypto/cryptobyte"
)

// rawECHConfig encodes a version-0xfe0d config without validating it, so
// that a bad public_name can be put on the wire; contents replaces the
// encoded contents when non-nil.
func rawECHConfig(c ech.Config, contents []byte) []byte {
	var b cryptobyte.Builder
	b.AddUint16(ech.Version)
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		if contents != nil {
			b.AddBytes(contents)
			return
		}
		b.AddUint8(c.ConfigID)
		b.AddUint16(c.KEM)
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(c.PublicKey) })
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			for _, cs := range c.CipherSuites {
				b.AddUint16(cs.KDF)
				b.AddUint16(cs.AEAD)
			}
		})
		b.AddUint8(c.MaximumNameLength)
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(c.PublicName)) })
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			for _, e := range c.Extensions {
				b.AddUint16(e.Type)
				b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(e.Data) })
			}
		})
	})
	return b.BytesOrPanic()
}

// mixedList is, in order: a good config (id 2), one with an IPv4-literal
// public_name (id 7), an unknown version, one whose public key is cut
// (id 9), and a good one with a mandatory extension (id 4).
func mixedList(t *testing.T) []byte {
	t.Helper()
	good, err := ech.GenerateKey(ech.KeyOptions{ConfigID: 2})
	if err != nil {
		t.Fatal(err)
	}
	ipv4 := good.Config
	ipv4.ConfigID, ipv4.PublicName = 7, "192.0.2.1"
	mandatory := good.Config
	mandatory.ConfigID, mandatory.Extensions = 4, []ech.Extension{{Type: 0xfa00}}
	list, err := ech.MarshalConfigList(good.Config.Raw, rawECHConfig(ipv4, nil),
		[]byte{0xfe, 0x0c, 0, 1, 0}, rawECHConfig(ech.Config{}, []byte{9, 0, 0x20, 0, 32, 1}),
		rawECHConfig(mandatory, nil))
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// TestEchInspectNamesBadConfigs: inspect is strict, as its help says: each
// bad config is named (index, config_id, field, reason), the others are
// still printed, and the command fails.
func TestEchInspectNamesBadConfigs(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString(mixedList(t))
	var out bytes.Buffer
	err := echCmd([]string{"inspect", b64}, strings.NewReader(""), &out, new(bytes.Buffer))
	if err == nil {
		t.Fatalf("bad configs gave no error:\n%s", out.String())
	}
	got := out.String()
	for _, want := range []string{
		"4 config(s) of version 0xfe0d, 1 skipped, 2 bad",
		"[0] ECHConfig",
		"[1] BAD ECHConfig, 60 bytes, config_id 7 (0x07): field public_name: \"192.0.2.1\" looks like an IPv4 literal",
		"  public_name:         192.0.2.1",
		"[2] skipped: version 0xfe0c (unknown)",
		"[3] BAD ECHConfig, 10 bytes, config_id 9 (0x09): field public_key: truncated or malformed",
		"  raw:                 fe0d0006090020002001",
		"[4] ECHConfig",
		"type 0xfa00 MANDATORY",
		"ech=" + b64,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	for _, want := range []string{"2 of 5 configs malformed or invalid",
		"config [1] (config_id 7): ech: ECHConfig.public_name", "config [3] (config_id 9): ech: ECHConfig.public_key"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// TestEchInspectExitStatus runs the binary: exit 1 with the bad configs
// named on stderr and every config on stdout, for a raw file and for a
// base64 value; exit 0 for a list without bad configs (the mandatory
// extension and unknown version are not errors); broken framing fails
// without output.
func TestEchInspectExitStatus(t *testing.T) {
	list := mixedList(t)
	raw := filepath.Join(t.TempDir(), "list.bin")
	if err := os.WriteFile(raw, list, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, arg := range []string{raw, base64.StdEncoding.EncodeToString(list)} {
		r := runCLI(t, "", time.Minute, "ech", "inspect", arg)
		if r.code != 1 || !strings.Contains(r.stderr, "echlab: ech inspect: 2 of 5 configs malformed or invalid") ||
			!strings.Contains(r.stdout, "[4] ECHConfig") || !strings.Contains(r.stdout, "[1] BAD ECHConfig") {
			t.Errorf("inspect %.20s: exit %d\nstdout:\n%s\nstderr:\n%s", arg, r.code, r.stdout, r.stderr)
		}
	}
	good, _ := ech.GenerateKey(ech.KeyOptions{ConfigID: 2})
	mandatory := good.Config
	mandatory.Extensions = []ech.Extension{{Type: 0xfa00}}
	clean, _ := ech.MarshalConfigList([]byte{0xfe, 0x0c, 0, 0}, rawECHConfig(mandatory, nil), good.Config.Raw)
	if r := runCLI(t, "", time.Minute, "ech", "inspect", base64.StdEncoding.EncodeToString(clean)); r.code != 0 ||
		!strings.Contains(r.stdout, ", 0 bad") {
		t.Errorf("clean list: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	broken := base64.StdEncoding.EncodeToString(list[:len(list)-1])
	if r := runCLI(t, "", time.Minute, "ech", "inspect", broken); r.code != 1 || r.stdout != "" {
		t.Errorf("broken framing: exit %d\n%s", r.code, r.stdout)
	}
	if r := runCLI(t, "", time.Minute, "help", "ech"); !strings.Contains(r.stdout, "the exit status is 1") {
		t.Errorf("help ech does not document the exit status:\n%s", r.stdout)
	}
}

// TestEchInspectMissingPath: a path that does not exist is reported as
// such, in one line, not as bad base64.
func TestEchInspectMissingPath(t *testing.T) {
	for _, args := range [][]string{{"ech", "inspect", "/no/such/dir"}, {"esni", "inspect", "./no-such.pem"}} {
		r := runCLI(t, "", time.Minute, args...)
		if r.code != 1 || !strings.Contains(r.stderr, args[2]+": no such file or folder") ||
			strings.Contains(r.stderr, "base64:") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
			t.Errorf("echlab %s: exit %d, stderr %q", strings.Join(args, " "), r.code, r.stderr)
		}
	}
}
