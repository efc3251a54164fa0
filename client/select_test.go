package client

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/echlab/echlab/ech"
	"golang.org/x/crypto/cryptobyte"
)

// encodeConfig encodes c as an ECHConfig without validating it (so that an
// invalid public_name can be put on the wire), with extra bytes after the
// extensions and the given version.
func encodeConfig(c *ech.Config, version uint16, extra []byte) []byte {
	var b cryptobyte.Builder
	b.AddUint16(version)
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
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
		b.AddBytes(extra)
	})
	return b.BytesOrPanic()
}

// badConfig is one kind of config a client must or should skip.
type badConfig struct {
	name  string
	field string // the field SelectConfig's error names
	make  func(c ech.Config) []byte
	// goRefusesList: crypto/tls fails the whole list instead of skipping
	// the config (it only skips at the config level what parses).
	goRefusesList bool
}

func badConfigs() []badConfig {
	return []badConfig{
		{"invalid public_name", "public_name", func(c ech.Config) []byte {
			c.PublicName = "bad_name.lab.test"
			return encodeConfig(&c, ech.Version, nil)
		}, false},
		{"single-label public_name", "public_name", func(c ech.Config) []byte {
			c.PublicName = "localhost"
			return encodeConfig(&c, ech.Version, nil)
		}, false},
		{"mandatory unknown extension", "extensions", func(c ech.Config) []byte {
			c.Extensions = []ech.Extension{{Type: 0xfa00}}
			return encodeConfig(&c, ech.Version, nil)
		}, false},
		{"unknown version", "version", func(c ech.Config) []byte {
			return encodeConfig(&c, 0xfe0c, nil)
		}, false},
		{"unknown KEM", "kem_id", func(c ech.Config) []byte {
			c.KEM = 0x7777
			return encodeConfig(&c, ech.Version, nil)
		}, false},
		{"trailing bytes in contents", "length", func(c ech.Config) []byte {
			return encodeConfig(&c, ech.Version, []byte{0})
		}, true},
	}
}

func TestSelectConfigSkipsBadConfigs(t *testing.T) {
	bad, _ := newKey(t, 1)
	good, _ := newKey(t, 2)
	for _, bc := range badConfigs() {
		t.Run(bc.name, func(t *testing.T) {
			raw := bc.make(bad.Config)
			list, err := ech.MarshalConfigList(raw, good.Config.Raw)
			must(t, err)
			offer, cfg, err := SelectConfig(list)
			if err != nil || cfg.ConfigID != 2 || string(offer[2:]) != string(good.Config.Raw) {
				t.Fatalf("picked %v, %v; want config 2", cfg, err)
			}
			only, err := ech.MarshalConfigList(raw)
			must(t, err)
			_, _, err = SelectConfig(only)
			var nu *ech.NoUsableConfigError
			if !errors.Is(err, ErrUnsupported) || !errors.As(err, &nu) || len(nu.Skipped) != 1 {
				t.Fatalf("only the bad config: %v", err)
			}
			var fe *ech.FieldError
			if !errors.As(nu.Skipped[0].Err, &fe) || fe.Field != bc.field || !strings.Contains(err.Error(), "config [0]") {
				t.Fatalf("reason %v, want one naming %s", err, bc.field)
			}
		})
	}
}

// TestSelectConfigNamesEverySkip: with nothing usable, the error lists
// each config in list order with the reason, whether the parse or the
// crypto/tls check skipped it.
func TestSelectConfigNamesEverySkip(t *testing.T) {
	k, _ := newKey(t, 4)
	cs := badConfigs()
	var parts [][]byte
	for _, bc := range cs {
		parts = append(parts, bc.make(k.Config))
	}
	list, err := ech.MarshalConfigList(parts...)
	must(t, err)
	_, _, err = SelectConfig(list)
	var nu *ech.NoUsableConfigError
	if !errors.As(err, &nu) || len(nu.Skipped) != len(cs) {
		t.Fatalf("error %v", err)
	}
	for i, s := range nu.Skipped {
		var fe *ech.FieldError
		if s.Index != i || !errors.As(s.Err, &fe) || fe.Field != cs[i].field {
			t.Errorf("skip %d: index %d, %v; want %s", i, s.Index, s.Err, cs[i].field)
		}
	}
	if _, _, err := SelectConfig([]byte{0, 9, 1}); err == nil || errors.Is(err, ErrUnsupported) || !errors.Is(err, ech.ErrMalformed) {
		t.Fatalf("broken framing: %v, want ech.ErrMalformed", err)
	}
}

// TestFetchSkipsBadConfig connects, on real sockets, with a list of one bad
// and one good config as published in DNS: the client skips the bad one and
// ECH is accepted with the good one. crypto/tls, as a client given the same
// list, is the oracle: it connects with ECH too, except where it refuses
// the whole list because a config's contents do not parse (RFC 9849 lets
// a client skip it; crypto/tls is stricter there).
func TestFetchSkipsBadConfig(t *testing.T) {
	l := newLab(t)
	bad, _ := newKey(t, 1) // a key the server does not hold
	good, _ := newKey(t, 2)
	port := startTLS(t, l.serverTLS(echKeys(good)))
	for _, bc := range badConfigs() {
		t.Run(bc.name, func(t *testing.T) {
			list, err := ech.MarshalConfigList(bc.make(bad.Config), good.Config.Raw)
			must(t, err)
			r := mustFetch(t, "https://secret.lab.test/", echWorld(t, l, port, list, "h2"))
			if r.ECH != ECHAccepted || r.ConfigID == nil || *r.ConfigID != 2 || r.Retried || r.Fallback {
				t.Fatalf("ech=%s config=%v retried=%v fallback=%v", r.ECH, r.ConfigID, r.Retried, r.Fallback)
			}
			wantSaw(t, r, "secret.lab.test", true)
			accepted, err := goTLSWithList(l, port, list)
			switch {
			case bc.goRefusesList && err == nil:
				t.Fatal("crypto/tls now accepts the list: drop goRefusesList")
			case !bc.goRefusesList && (err != nil || !accepted):
				t.Fatalf("crypto/tls oracle: accepted=%v err=%v", accepted, err)
			}
		})
	}
}

// TestFetchNoUsableConfig: with only bad configs, the fetch fails closed
// with the config class, and the error says why each config was skipped.
func TestFetchNoUsableConfig(t *testing.T) {
	l := newLab(t)
	bad, _ := newKey(t, 1)
	port := startTLS(t, l.serverTLS(echKeys(bad)))
	var parts [][]byte
	for _, bc := range badConfigs() {
		parts = append(parts, bc.make(bad.Config))
	}
	list, err := ech.MarshalConfigList(parts...)
	must(t, err)
	r, err := Fetch(ctxT(t), "https://secret.lab.test/", echWorld(t, l, port, list, "h2"))
	wantClass(t, r, err, ClassConfig)
	for i, bc := range badConfigs() {
		if want := "config [" + itoa(i) + "]"; !strings.Contains(r.Error, want) || !strings.Contains(r.Error, "ECHConfig."+bc.field) {
			t.Errorf("error %q does not name %s (%s)", r.Error, want, bc.field)
		}
	}
}

// TestLoadConfigListKeepsBadConfigs: a raw file or base64 value holding a
// well-framed list with a bad config loads, so SelectConfig can skip it.
func TestLoadConfigListKeepsBadConfigs(t *testing.T) {
	bad, _ := newKey(t, 1)
	good, _ := newKey(t, 2)
	list, err := ech.MarshalConfigList(badConfigs()[0].make(bad.Config), good.Config.Raw)
	must(t, err)
	raw := filepath.Join(t.TempDir(), "list.bin")
	must(t, os.WriteFile(raw, list, 0o644))
	for _, arg := range []string{raw, b64(list)} {
		got, err := LoadConfigList(arg)
		if err != nil || string(got) != string(list) {
			t.Fatalf("LoadConfigList(%.20q) = %x, %v", arg, got, err)
		}
	}
}

// goTLSWithList dials the server with crypto/tls's own ECH client.
func goTLSWithList(l *lab, port int, list []byte) (bool, error) {
	conf := &tls.Config{ServerName: "secret.lab.test", RootCAs: l.ca.Pool(), MinVersion: tls.VersionTLS13,
		EncryptedClientHelloConfigList: list}
	c, err := tls.Dial("tcp", net.JoinHostPort("127.0.0.1", itoa(port)), conf)
	if err != nil {
		return false, err
	}
	defer c.Close()
	return c.ConnectionState().ECHAccepted, nil
}
