package ech

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSecretContextRFC9180Vectors runs the key schedule from the
// shared_secret of RFC 9180 Appendix A (specs/hpke.md) and opens the
// listed ciphertexts in sequence: key, base_nonce and nonce handling all
// have to match the RFC's.
func TestSecretContextRFC9180Vectors(t *testing.T) {
	pt := "4265617574792069732074727574682c20747275746820626561757479"
	info := "4f6465206f6e2061204772656369616e2055726e"
	for _, v := range []struct {
		name  string
		kem   uint16
		suite CipherSuite
		ss    string
		cts   []string // sequence numbers 0, 1, …
	}{
		{"A.1 X25519 SHA256 AES-128-GCM", 0x20, CipherSuite{1, 1},
			"fe0e18c9f024ce43799ae393c7e8fe8fce9d218875e8227b0187c04e7d2ea1fc",
			[]string{"f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a96d8770ac83d07bea87e13c512a",
				"af2d7e9ac9ae7e270f46ba1f975be53c09f8d875bdc8535458c2494e8a6eab251c03d0c22a56b8ca42c2063b84"}},
		{"A.2 X25519 SHA256 ChaCha20Poly1305", 0x20, CipherSuite{1, 3},
			"0bbe78490412b4bbea4812666f7916932b828bba79942424abb65244930d69a7",
			[]string{"1c5250d8034ec2b784ba2cfd69dbdb8af406cfe3ff938e131f0def8c8b60b4db21993c62ce81883d2dd1b51a28",
				"6b53c051e4199c518de79594e1c4ab18b96f081549d45ce015be002090bb119e85285337cc95ba5f59992dc98c"}},
		{"A.6 P-521 SHA512 AES-256-GCM", 0x12, CipherSuite{3, 2},
			"776ab421302f6eff7d7cb5cb1adaea0cd50872c71c2d63c30c4f1d5e43653336fef33b103c67e7a98add2d3b66e2fda95b5b2a667aa9dac7e59cc1d46d30e818",
			[]string{"170f8beddfe949b75ef9c387e201baf4132fa7374593dfafa90768788b7b2b200aafcc6d80ea4c795a7c5b841a",
				"d9ee248e220ca24ac00bbbe7e221a832e4f7fa64c4fbab3945b6f3af0c5ecd5e16815b328be4954a05fd352256"}},
	} {
		c, err := newSecretContext(v.kem, v.suite, unhex(t, v.ss), unhex(t, info))
		if err != nil {
			t.Fatalf("%s: %v", v.name, err)
		}
		for seq, ct := range v.cts {
			got, err := c.Open(unhex(t, ct), []byte("Count-"+string(rune('0'+seq))))
			if err != nil || !bytes.Equal(got, unhex(t, pt)) {
				t.Errorf("%s: sequence %d: %x, %v", v.name, seq, got, err)
			}
		}
	}
}

// TestOpenWithSecret: for every KEM and a spread of suites, the shared
// secret Seal reports opens the payload without the private key, to the
// same ClientHelloInner the private key gives; a wrong secret or a wrong
// config does not; after a HelloRetryRequest the same context opens the
// second ClientHello.
func TestOpenWithSecret(t *testing.T) {
	suites := []CipherSuite{{KDFHKDFSHA256, AEADAES128GCM}, {KDFHKDFSHA384, AEADAES256GCM}, {KDFHKDFSHA512, AEADChaCha20Poly1305}}
	for i, kemID := range KEMs() {
		suite := suites[i%len(suites)]
		key := newKey(t, KeyOptions{ConfigID: uint8(i), KEM: kemID, CipherSuites: []CipherSuite{suite}})
		inner := buildHello(t, helloSpec{name: "secret.lab.test", alpn: []string{"h2"},
			groups: []uint16{0x1d}, shares: []KeyShare{x25519Share(t)}})
		s, err := Seal(&key.Config, inner, nil)
		if err != nil {
			t.Fatalf("KEM %#x: %v", kemID, err)
		}
		if len(s.SharedSecret) == 0 {
			t.Fatalf("KEM %#x: Seal reports no shared secret", kemID)
		}
		byKey, err := Open(KeyList{key}, s.Outer, nil)
		if err != nil {
			t.Fatalf("KEM %#x: Open with the key: %v", kemID, err)
		}
		o, err := OpenWithSecret(&key.Config, s.SharedSecret, s.Outer)
		if err != nil {
			t.Fatalf("KEM %#x suite %v: OpenWithSecret: %v", kemID, suite, err)
		}
		if !bytes.Equal(o.Inner.Raw, byKey.Inner.Raw) || o.Inner.ServerName != "secret.lab.test" || o.Key != nil || o.KEM != kemID {
			t.Errorf("KEM %#x: opened inner %q (KEM %#x), key %v", kemID, o.Inner.ServerName, o.KEM, o.Key)
		}
		bad := bytes.Clone(s.SharedSecret)
		bad[0] ^= 1
		if _, err := OpenWithSecret(&key.Config, bad, s.Outer); !errors.Is(err, ErrDecrypt) {
			t.Errorf("KEM %#x: a wrong secret gives %v, want ErrDecrypt", kemID, err)
		}
		other := newKey(t, KeyOptions{ConfigID: uint8(i), KEM: kemID, CipherSuites: []CipherSuite{suite}, PublicName: "other.lab.test"})
		if _, err := OpenWithSecret(&other.Config, s.SharedSecret, s.Outer); !errors.Is(err, ErrDecrypt) {
			t.Errorf("KEM %#x: the wrong ECHConfig gives %v, want ErrDecrypt", kemID, err)
		}
		s2, err := s.Context.SealSecond(inner)
		if err != nil {
			t.Fatal(err)
		}
		second, err := o.Context.OpenSecond(s2.Outer)
		if err != nil || second.Inner.ServerName != "secret.lab.test" {
			t.Errorf("KEM %#x: second ClientHello: %v", kemID, err)
		}
	}
}

// TestOpenWithSecretBadInput: a ClientHelloInner (ECH of type inner), an
// empty secret and an unknown AEAD are errors, not panics.
func TestOpenWithSecretBadInput(t *testing.T) {
	key := newKey(t, KeyOptions{})
	hello := buildHello(t, helloSpec{name: "a.test", groups: []uint16{0x1d}, shares: []KeyShare{x25519Share(t)}})
	innerHello, err := ParseClientHello(hello)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenWithSecret(&key.Config, make([]byte, 32), innerHello); !errors.Is(err, ErrInvalid) {
		t.Errorf("inner hello: %v", err)
	}
	s, err := Seal(&key.Config, hello, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenWithSecret(&key.Config, nil, s.Outer); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty secret: %v", err)
	}
	if _, err := newSecretContext(0x20, CipherSuite{1, 0x99}, make([]byte, 32), nil); !errors.Is(err, ErrUnsupported) {
		t.Errorf("unknown AEAD: %v", err)
	}
}
