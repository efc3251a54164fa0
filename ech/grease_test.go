package ech

import (
	"bytes"
	"crypto/tls"
	"errors"
	"slices"
	"testing"
)

func TestGreaseClientHello(t *testing.T) {
	key := newKey(t, KeyOptions{MaximumNameLength: 32})
	base := buildHello(t, helloSpec{name: "secret.lab.test", alpn: []string{"h2"}, groups: []uint16{0x1d}, shares: []KeyShare{x25519Share(t)}})
	parsed, err := ParseClientHello(base)
	if err != nil {
		t.Fatal(err)
	}
	real, err := Seal(&key.Config, base, &SealOptions{Compress: longestRun(parsed.Extensions, GoCompressed)})
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
		// ClientHello with the same compression and padding.
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

// TestGreaseSizeMatchesGoECH compares a GREASE ClientHello made from
// crypto/tls's ClientHello with the ClientHello crypto/tls itself sends
// with real ECH for the same configuration: an observer must not tell
// them apart by size (RFC 9849 §6.2). A GREASE client knows no
// maximum_name_length, so it uses the default options, as the client
// package does. crypto/tls (Go 1.26, encodeInnerClientHello) overwrites
// the maximum_name_length padding with the rounding to 32 instead of
// adding to it, so its payload is 32n+16 only when maximum_name_length is
// 0; then the two payloads must be equal, otherwise close.
func TestGreaseSizeMatchesGoECH(t *testing.T) {
	for _, maxName := range []uint8{0, 32, 64} {
		key := newKey(t, KeyOptions{ConfigID: 3, MaximumNameLength: maxName})
		list, err := MarshalConfigList(key.Config.Raw)
		if err != nil {
			t.Fatal(err)
		}
		cfg := func(list []byte) *tls.Config {
			return &tls.Config{ServerName: "secret.lab.test", NextProtos: []string{"h2", "http/1.1"},
				MinVersion: tls.VersionTLS13, EncryptedClientHelloConfigList: list}
		}
		realMsg, _, err := HandshakeFromRecords(captureClientHello(t, cfg(list)))
		if err != nil {
			t.Fatal(err)
		}
		real, err := ParseClientHello(realMsg)
		if err != nil {
			t.Fatal(err)
		}
		base, _, err := HandshakeFromRecords(captureClientHello(t, cfg(nil)))
		if err != nil {
			t.Fatal(err)
		}
		g, err := GreaseClientHello(base, nil)
		if err != nil {
			t.Fatal(err)
		}
		if real.ECH == nil || g.ECH == nil {
			t.Fatal("a ClientHello lacks its ECH extension")
		}
		t.Logf("max_name_length %d: base %d, crypto/tls ECH %d (payload %d), GREASE %d (payload %d)",
			maxName, len(base), len(real.Raw), len(real.ECH.Payload), len(g.Raw), len(g.ECH.Payload))
		if d := len(g.Raw) - len(real.Raw); d < -32 || d > 32 {
			t.Errorf("max_name_length %d: GREASE ClientHello %d bytes, crypto/tls ECH %d", maxName, len(g.Raw), len(real.Raw))
		}
		if d := len(g.ECH.Payload) - len(real.ECH.Payload); d < -32 || d > 32 || (maxName == 0 && d != 0) {
			t.Errorf("max_name_length %d: GREASE payload %d, crypto/tls payload %d", maxName, len(g.ECH.Payload), len(real.ECH.Payload))
		}
		if len(g.ECH.Enc) != len(real.ECH.Enc) {
			t.Errorf("GREASE enc %d bytes, crypto/tls %d", len(g.ECH.Enc), len(real.ECH.Enc))
		}
		if (len(g.ECH.Payload)-16)%32 != 0 {
			t.Errorf("GREASE payload %d bytes is not padded to 32 plus the 16-byte tag", len(g.ECH.Payload))
		}
	}
}

func TestLongestRun(t *testing.T) {
	exts := func(types ...uint16) (out []HelloExtension) {
		for _, ty := range types {
			out = append(out, HelloExtension{Type: ty})
		}
		return out
	}
	set := []uint16{10, 13, 51}
	for _, tc := range []struct {
		in   []HelloExtension
		want []uint16
	}{
		{exts(0, 10, 13, 16, 51), []uint16{10, 13}},
		{exts(0, 10, 16, 13, 51, 10), []uint16{13, 51, 10}},
		{exts(10, 10, 13), []uint16{10, 13}},
		{exts(0, 16), nil},
	} {
		if got := longestRun(tc.in, set); !slices.Equal(got, tc.want) {
			t.Errorf("longestRun(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
