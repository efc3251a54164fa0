package ech

import (
	"bytes"
	"errors"
	"testing"

	"github.com/cloudflare/circl/hpke"
)

// TestGenerateKeyAllKEMs makes a key for every KEM circl offers and runs a
// real HPKE round trip (circl sender → circl receiver) for every suite.
func TestGenerateKeyAllKEMs(t *testing.T) {
	suites, err := ParseCipherSuites("sha256,sha384,sha512", "aes128gcm,aes256gcm,chacha20poly1305")
	if err != nil || len(suites) != 9 {
		t.Fatalf("ParseCipherSuites: %v %v", suites, err)
	}
	for _, kemID := range KEMs() {
		t.Run(KEMFlagName(kemID), func(t *testing.T) {
			k, err := GenerateKey(KeyOptions{KEM: kemID, CipherSuites: suites, ConfigID: 3})
			if err != nil {
				t.Fatal(err)
			}
			if err := k.Check(); err != nil {
				t.Fatal(err)
			}
			scheme, _ := KEMScheme(kemID)
			if len(k.Config.PublicKey) != scheme.PublicKeySize() || len(k.PrivateKey) != scheme.PrivateKeySize() {
				t.Fatalf("key sizes %d/%d", len(k.Config.PublicKey), len(k.PrivateKey))
			}
			c, err := ParseConfig(k.Config.Raw)
			if err != nil || c.KEM != kemID || len(c.CipherSuites) != 9 {
				t.Fatalf("config does not parse back: %v", err)
			}
			pk, _ := scheme.UnmarshalBinaryPublicKey(c.PublicKey)
			sk, _ := scheme.UnmarshalBinaryPrivateKey(k.PrivateKey)
			for _, cs := range c.CipherSuites {
				suite := hpke.NewSuite(hpke.KEM(kemID), hpke.KDF(cs.KDF), hpke.AEAD(cs.AEAD))
				info := append([]byte("tls ech\x00"), c.Raw...)
				snd, _ := suite.NewSender(pk, info)
				enc, sealer, err := snd.Setup(nil)
				if err != nil {
					t.Fatal(err)
				}
				ct, _ := sealer.Seal([]byte("inner"), []byte("aad"))
				rcv, _ := suite.NewReceiver(sk, info)
				opener, err := rcv.Setup(enc)
				if err != nil {
					t.Fatal(err)
				}
				if pt, err := opener.Open(ct, []byte("aad")); err != nil || string(pt) != "inner" {
					t.Fatalf("%s: open: %q %v", cs, pt, err)
				}
			}
		})
	}
}

func TestGenerateKeyDeterministic(t *testing.T) {
	seed := bytes.Repeat([]byte{0x42}, 128)
	a, _ := GenerateKey(KeyOptions{KEM: KEMP384HKDFSHA384, Rand: bytes.NewReader(seed)})
	b, _ := GenerateKey(KeyOptions{KEM: KEMP384HKDFSHA384, Rand: bytes.NewReader(seed)})
	if !bytes.Equal(a.PrivateKey, b.PrivateKey) || !bytes.Equal(a.Config.Raw, b.Config.Raw) {
		t.Fatal("same Rand gave different keys")
	}
	if _, err := GenerateKey(KeyOptions{Rand: bytes.NewReader(nil)}); err == nil {
		t.Fatal("empty Rand: no error")
	}
}

func TestGenerateKeyErrors(t *testing.T) {
	cases := []struct {
		name     string
		opts     KeyOptions
		sentinel error
		field    string
	}{
		{"unknown KEM", KeyOptions{KEM: 0x0042}, ErrUnsupported, "kem_id"},
		{"unknown KDF", KeyOptions{CipherSuites: []CipherSuite{{KDF: 9, AEAD: 1}}}, ErrUnsupported, "cipher_suites"},
		{"export-only AEAD", KeyOptions{CipherSuites: []CipherSuite{{KDF: 1, AEAD: 0xffff}}}, ErrUnsupported, "cipher_suites"},
		{"empty suites", KeyOptions{CipherSuites: []CipherSuite{}}, ErrInvalid, "cipher_suites"},
		{"IP public name", KeyOptions{PublicName: "10.0.0.1"}, ErrInvalid, "public_name"},
	}
	for _, tc := range cases {
		_, err := GenerateKey(tc.opts)
		var fe *FieldError
		if !errors.Is(err, tc.sentinel) || !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%s: %v, want %v on %s", tc.name, err, tc.sentinel, tc.field)
		}
	}
}

func TestNewKeyChecksPair(t *testing.T) {
	a, _ := GenerateKey(KeyOptions{})
	b, _ := GenerateKey(KeyOptions{})
	if _, err := NewKey(a.Config, a.PrivateKey); err != nil {
		t.Fatal(err)
	}
	_, err := NewKey(a.Config, b.PrivateKey)
	var fe *FieldError
	if !errors.Is(err, ErrInvalid) || !errors.As(err, &fe) || fe.Field != "private_key" {
		t.Fatalf("mismatched key: %v", err)
	}
	if _, err := NewKey(a.Config, a.PrivateKey[:31]); !errors.Is(err, ErrMalformed) {
		t.Fatalf("short key: %v", err)
	}
	p, _ := GenerateKey(KeyOptions{KEM: KEMP256HKDFSHA256})
	zero := make([]byte, 32) // the scalar 0 is not a P-256 private key
	if _, err := NewKey(p.Config, zero); err == nil {
		t.Fatal("zero P-256 scalar accepted")
	}
}

func TestSuiteNames(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint16
	}{{"x25519", 0x20}, {"P256", 0x10}, {"xwing", 0x647a}, {"0x0021", 0x21}, {"48", 0x30}, {"x25519kyber768", 0x30}} {
		if got, err := ParseKEM(tc.in); err != nil || got != tc.want {
			t.Errorf("ParseKEM(%q) = %#x, %v", tc.in, got, err)
		}
	}
	if _, err := ParseKEM("rsa"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("ParseKEM(rsa): %v", err)
	}
	if _, err := ParseKEM("0x0099"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("ParseKEM(0x0099): %v", err)
	}
	if got, _ := ParseKDF("hkdf-sha384"); got != 2 {
		t.Errorf("ParseKDF = %d", got)
	}
	if got, _ := ParseAEAD("ChaCha20-Poly1305"); got != 3 {
		t.Errorf("ParseAEAD = %d", got)
	}
	cs, err := ParseCipherSuites("", "aes256gcm,chacha20poly1305,aes256gcm")
	if err != nil || len(cs) != 2 || cs[0] != (CipherSuite{1, 2}) || cs[1] != (CipherSuite{1, 3}) {
		t.Errorf("ParseCipherSuites = %v, %v", cs, err)
	}
	if KEMName(0x647a) != "X-Wing (MLKEM768-X25519)" || KDFName(9) != "unknown" || AEADName(1) != "AES-128-GCM" {
		t.Error("names")
	}
}

func BenchmarkGenerateKey(b *testing.B) {
	for _, kemID := range KEMs() {
		b.Run(KEMFlagName(kemID), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := GenerateKey(KeyOptions{KEM: kemID}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
