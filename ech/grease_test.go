package ech

import (
	"bytes"
	"errors"
	"testing"
)

func TestGreaseClientHello(t *testing.T) {
	key := newKey(t, KeyOptions{MaximumNameLength: 32})
	base := buildHello(t, helloSpec{name: "secret.lab.test", alpn: []string{"h2"}, groups: []uint16{0x1d}, shares: []KeyShare{x25519Share(t)}})
	real, err := Seal(&key.Config, base, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, kem := range []uint16{KEMX25519HKDFSHA256, KEMP256HKDFSHA256, KEMXWing} {
		g, err := GreaseClientHello(base, &GreaseOptions{KEM: kem, MaximumNameLength: 32})
		if err != nil {
			t.Fatal(err)
		}
		scheme, _ := KEMScheme(kem)
		e := g.ECH
		if e == nil || e.Type != ECHOuter || len(e.Enc) != scheme.CiphertextSize() || e.CipherSuite != (CipherSuite{1, 1}) {
			t.Fatalf("KEM %#04x: GREASE ECH %+v", kem, e)
		}
		// The payload is as long as a real one sealed from the same inner
		// ClientHello with the same padding.
		if len(e.Payload) != len(real.Outer.ECH.Payload) {
			t.Errorf("KEM %#04x: GREASE payload %d bytes, real %d", kem, len(e.Payload), len(real.Outer.ECH.Payload))
		}
		if _, err := Open(KeyList{key}, g, &OpenOptions{TrialDecrypt: true}); !errors.Is(err, ErrDecrypt) {
			t.Errorf("KEM %#04x: GREASE opened: %v", kem, err)
		}
		if g.ServerName != "secret.lab.test" {
			t.Errorf("GREASE changed the server name to %q", g.ServerName)
		}
	}
	a, _ := GreaseECHExtension(nil, 100)
	b, _ := GreaseECHExtension(nil, 100)
	if bytes.Equal(a, b) || len(a) != len(b) || len(a) != 1+4+1+2+32+2+116 {
		t.Errorf("GREASE extensions %d and %d bytes, equal %v", len(a), len(b), bytes.Equal(a, b))
	}
	if _, err := GreaseECHExtension(&GreaseOptions{KEM: 0x9999}, 10); !errors.Is(err, ErrUnsupported) {
		t.Errorf("unknown KEM: %v", err)
	}
}

// TestGreasePSK: a pre_shared_key in the inner ClientHello becomes a GREASE
// one of the same shape in the outer (RFC 9849 §6.1.2).
func TestGreasePSK(t *testing.T) {
	key := newKey(t, KeyOptions{})
	ch, _ := ParseClientHello(buildHello(t, helloSpec{name: "secret.lab.test", groups: []uint16{0x1d}, shares: []KeyShare{x25519Share(t)}}))
	psk := []byte{0, 10, 0, 4, 1, 2, 3, 4, 0, 0, 0, 9, 0, 33, 32}
	psk = append(psk, bytes.Repeat([]byte{7}, 32)...)
	ch.SetExtension(ExtPreSharedKey, psk)
	inner, _ := ch.Marshal()
	s, err := Seal(&key.Config, inner, nil)
	if err != nil {
		t.Fatal(err)
	}
	in, out := s.Inner.PreSharedKey, s.Outer.PreSharedKey
	if out == nil || len(out.Identities) != 1 || len(out.Identities[0].Identity) != 4 || len(out.Binders[0]) != 32 ||
		bytes.Equal(out.Identities[0].Identity, in.Identities[0].Identity) || bytes.Equal(out.Binders[0], in.Binders[0]) {
		t.Errorf("outer PSK %+v, inner %+v", out, in)
	}
	if last := s.Outer.Extensions[len(s.Outer.Extensions)-1]; last.Type != ExtPreSharedKey {
		t.Errorf("pre_shared_key is not last in the outer ClientHello but %s", last.Name())
	}
}
