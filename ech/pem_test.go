package ech

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"os"
	"strings"
	"testing"
)

// TestPEMRFC9934Example reads the example file of RFC 9934, Figure 1.
func TestPEMRFC9934Example(t *testing.T) {
	b, err := os.ReadFile("testdata/rfc9934-figure1.pem")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ParsePEM(b)
	if err != nil {
		t.Fatal(err)
	}
	if f.Key == nil || f.Key.Config.KEM != KEMX25519HKDFSHA256 || f.Key.Config.PublicName != "example.com" {
		t.Fatalf("got %+v", f.Key)
	}
	// Go's x509 reads the same PRIVATE KEY block as an X25519 key.
	blk, _ := pem.Decode(b)
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if xk, ok := k.(*ecdh.PrivateKey); !ok || !bytes.Equal(xk.Bytes(), f.Key.PrivateKey) {
		t.Fatalf("x509 decodes %T differently", k)
	}
	// And our encoding of that key is the RFC's bytes.
	out, err := MarshalPEM(f.Key)
	if err != nil || !bytes.Equal(out, b) {
		t.Fatalf("MarshalPEM differs from the RFC example:\n%s", out)
	}
}

func TestPEMRoundTripAllKEMs(t *testing.T) {
	for _, kemID := range KEMs() {
		k, err := GenerateKey(KeyOptions{KEM: kemID, ConfigID: 200})
		if err != nil {
			t.Fatal(err)
		}
		b, err := MarshalPEM(k)
		if err != nil {
			t.Fatal(err)
		}
		f, err := ParsePEM(b)
		if err != nil {
			t.Fatalf("%s: %v", KEMFlagName(kemID), err)
		}
		if !bytes.Equal(f.Key.PrivateKey, k.PrivateKey) || !bytes.Equal(f.Key.Config.Raw, k.Config.Raw) {
			t.Fatalf("%s: round trip differs", KEMFlagName(kemID))
		}
	}
}

// TestPKCS8StandardForms: Go's x509 understands our PRIVATE KEY blocks for
// the curves it knows (a check by an independent decoder).
func TestPKCS8StandardForms(t *testing.T) {
	for _, kemID := range []uint16{KEMP256HKDFSHA256, KEMP384HKDFSHA384, KEMP521HKDFSHA512, KEMX25519HKDFSHA256} {
		k, _ := GenerateKey(KeyOptions{KEM: kemID})
		der, err := MarshalPKCS8(kemID, k.PrivateKey)
		if err != nil {
			t.Fatal(err)
		}
		key, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			t.Fatalf("%s: x509: %v", KEMFlagName(kemID), err)
		}
		var got []byte
		switch key := key.(type) {
		case *ecdsa.PrivateKey:
			e, _ := key.ECDH()
			got = e.Bytes()
		case *ecdh.PrivateKey:
			got = key.Bytes()
		}
		if !bytes.Equal(got, k.PrivateKey) {
			t.Fatalf("%s: x509 decodes a different key", KEMFlagName(kemID))
		}
	}
}

func pemBlock(typ string, b []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}))
}

func TestParsePEMMalformed(t *testing.T) {
	k, _ := GenerateKey(KeyOptions{ConfigID: 1})
	other, _ := GenerateKey(KeyOptions{ConfigID: 2})
	good, _ := MarshalPEM(k)
	der, _ := MarshalPKCS8(k.Config.KEM, k.PrivateKey)
	list, _ := MarshalConfigList(k.Config.Raw)
	otherList, _ := MarshalConfigList(other.Config.Raw)
	keyBlock, cfgBlock := pemBlock(PEMPrivateKey, der), pemBlock(PEMECHConfig, list)
	cases := []struct {
		name     string
		in       string
		sentinel error
	}{
		{"empty file", "", ErrMalformed},
		{"only whitespace", "\n \n", ErrMalformed},
		{"wrong first block type", pemBlock("EC PRIVATE KEY", der) + cfgBlock, ErrMalformed},
		{"wrong second block type", keyBlock + pemBlock("CERTIFICATE", list), ErrMalformed},
		{"missing ECHCONFIG", keyBlock, ErrMalformed},
		{"blocks swapped", cfgBlock + keyBlock + cfgBlock, ErrMalformed},
		{"two private keys", keyBlock + keyBlock + cfgBlock, ErrMalformed},
		{"text before", "hello\n" + string(good), ErrMalformed},
		{"text between", keyBlock + "junk\n" + cfgBlock, ErrMalformed},
		{"bad base64 in key", strings.Replace(keyBlock, "M", "*", 1) + cfgBlock, ErrMalformed},
		{"bad base64 in config", keyBlock + strings.Replace(cfgBlock, "A", "!", 1), ErrMalformed},
		{"unterminated block", keyBlock + strings.Split(cfgBlock, "-----END")[0], ErrMalformed},
		{"key does not match config", keyBlock + pemBlock(PEMECHConfig, otherList), ErrInvalid},
		{"trailing bytes in ECHConfigList", keyBlock + pemBlock(PEMECHConfig, append(append([]byte(nil), list...), 0)), ErrMalformed},
		{"trailing bytes after PKCS#8", pemBlock(PEMPrivateKey, append(append([]byte(nil), der...), 0)) + cfgBlock, ErrMalformed},
		{"PKCS#8 of an unknown algorithm", pemBlock(PEMPrivateKey, mustPKCS8Ed25519(t)) + cfgBlock, ErrUnsupported},
		{"truncated PKCS#8", pemBlock(PEMPrivateKey, der[:len(der)-3]) + cfgBlock, ErrMalformed},
		{"headers", strings.Replace(keyBlock, "-----\n", "-----\nProc-Type: 4,ENCRYPTED\n\n", 1) + cfgBlock, ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := ParsePEM([]byte(tc.in))
			var fe *FieldError
			if !errors.Is(err, tc.sentinel) || !errors.As(err, &fe) {
				t.Fatalf("got %+v, %v; want %v", f, err, tc.sentinel)
			}
		})
	}
}

func mustPKCS8Ed25519(t *testing.T) []byte {
	// An Ed25519 PrivateKeyInfo (RFC 8410 §10.3 example).
	b, err := base64.StdEncoding.DecodeString("MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParsePEMConfigOnlyAndTrailer(t *testing.T) {
	k, _ := GenerateKey(KeyOptions{})
	list, _ := MarshalConfigList(k.Config.Raw)
	f, err := ParsePEM([]byte(pemBlock(PEMECHConfig, list)))
	if err != nil || f.Key != nil || !bytes.Equal(f.ConfigList.Raw, list) {
		t.Fatalf("config-only file: %+v %v", f, err)
	}
	// RFC 9934 §3: content after the ECHCONFIG block SHOULD be ignored.
	good, _ := MarshalPEM(k)
	f, err = ParsePEM(append(good, "trailing notes\n-----BEGIN X-----\n"...))
	if err != nil || f.Key == nil {
		t.Fatalf("trailing content not ignored: %v", err)
	}
}

func TestParsePEMKeyMatchesSecondConfig(t *testing.T) {
	a, _ := GenerateKey(KeyOptions{ConfigID: 1})
	b, _ := GenerateKey(KeyOptions{ConfigID: 2, KEM: KEMP256HKDFSHA256})
	list, _ := MarshalConfigList(a.Config.Raw, b.Config.Raw)
	der, _ := MarshalPKCS8(b.Config.KEM, b.PrivateKey)
	f, err := ParsePEM([]byte(pemBlock(PEMPrivateKey, der) + pemBlock(PEMECHConfig, list)))
	if err != nil || f.Key.Config.ConfigID != 2 || len(f.ConfigList.Configs) != 2 {
		t.Fatalf("%+v %v", f, err)
	}
}

func TestDecodeConfigListText(t *testing.T) {
	k, _ := GenerateKey(KeyOptions{})
	list, _ := MarshalConfigList(k.Config.Raw)
	b64 := base64.StdEncoding.EncodeToString(list)
	pemFile, _ := MarshalPEM(k)
	for _, in := range []string{
		b64,
		strings.TrimRight(b64, "="),
		base64.URLEncoding.EncodeToString(list),
		"ech=" + b64,
		`ech="` + b64 + `"`,
		"  " + b64[:20] + "\n" + b64[20:] + "\n",
		"secret.lab.test. 300 IN HTTPS 1 . alpn=h2 ech=" + b64 + " ipv4hint=127.0.0.1",
		`1 . alpn="h2" ech="` + b64 + `"`,
		string(pemFile),
	} {
		got, err := DecodeConfigListText(in)
		if err != nil || !bytes.Equal(got, list) {
			t.Errorf("%q: %x, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "ech=", `ech="AAAA`, "not base64 !!", base64.StdEncoding.EncodeToString([]byte{0, 9, 1})} {
		if _, err := DecodeConfigListText(in); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}

func FuzzParsePEM(f *testing.F) {
	if b, err := os.ReadFile("testdata/rfc9934-figure1.pem"); err == nil {
		f.Add(b)
	}
	k, _ := GenerateKey(KeyOptions{KEM: KEMXWing})
	b, _ := MarshalPEM(k)
	f.Add(b)
	f.Add([]byte("-----BEGIN ECHCONFIG-----\nAAA=\n-----END ECHCONFIG-----\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		pf, err := ParsePEM(in)
		if err != nil {
			return
		}
		if pf.Key != nil {
			if err := pf.Key.Check(); err != nil {
				t.Fatalf("ParsePEM returned a key that fails Check: %v", err)
			}
		}
	})
}

func FuzzParsePKCS8(f *testing.F) {
	for _, kemID := range KEMs() {
		k, _ := GenerateKey(KeyOptions{KEM: kemID})
		der, _ := MarshalPKCS8(kemID, k.PrivateKey)
		f.Add(der)
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		kemID, priv, err := ParsePKCS8(der)
		if err != nil {
			return
		}
		if _, err := PublicKeyOf(kemID, priv); err == nil {
			if _, err := MarshalPKCS8(kemID, priv); err != nil {
				t.Fatalf("valid key does not re-encode: %v", err)
			}
		}
	})
}

func FuzzDecodeConfigListText(f *testing.F) {
	k, _ := GenerateKey(KeyOptions{})
	list, _ := MarshalConfigList(k.Config.Raw)
	b64 := base64.StdEncoding.EncodeToString(list)
	f.Add("ech=" + b64)
	f.Add(`1 . alpn="h2" ech="` + b64 + `"`)
	f.Add(b64[:10])
	f.Fuzz(func(t *testing.T, s string) {
		b, err := DecodeConfigListText(s)
		if err != nil {
			return
		}
		if l, err := ParseConfigListLenient(b); l == nil {
			t.Fatalf("returned bytes are not a well-framed list: %v", err)
		}
	})
}
