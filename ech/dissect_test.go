package ech

import (
	"bytes"
	"slices"
	"testing"
)

// TestDissectEveryField checks each view the lab shows on one ClientHello
// that carries them all: psk_key_exchange_modes, pre_shared_key, padding,
// key shares of two groups with their sizes, the inner marker; and, on the
// ClientHelloOuter Seal makes from it, the encrypted_client_hello fields.
// The extension order and bytes are kept.
func TestDissectEveryField(t *testing.T) {
	ch, err := ParseClientHello(buildHello(t, helloSpec{name: "secret.lab.test", alpn: []string{"h2", "h3"},
		groups: []uint16{0x1d, 0x17}, shares: []KeyShare{x25519Share(t), p256Share(t)}}))
	if err != nil {
		t.Fatal(err)
	}
	ch.SetExtension(ExtPadding, make([]byte, 77))
	psk := []byte{0, 10, 0, 4, 1, 2, 3, 4, 0, 0, 0x30, 0x39, 0, 33, 32}
	ch.SetExtension(ExtPreSharedKey, append(psk, bytes.Repeat([]byte{7}, 32)...))
	msg, err := ch.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseClientHello(msg)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.PSKModes, []uint8{1}) || got.PaddingLen != 77 || got.ServerName != "secret.lab.test" ||
		!slices.Equal(got.ALPN, []string{"h2", "h3"}) || !slices.Equal(got.SupportedGroups, []uint16{0x1d, 0x17}) ||
		!slices.Equal(got.SupportedVersions, []uint16{VersionTLS13}) {
		t.Errorf("views: psk modes %v padding %d sni %q alpn %q groups %x versions %x",
			got.PSKModes, got.PaddingLen, got.ServerName, got.ALPN, got.SupportedGroups, got.SupportedVersions)
	}
	if len(got.KeyShares) != 2 || got.KeyShares[0].Group != 0x1d || len(got.KeyShares[0].Data) != 32 ||
		got.KeyShares[1].Group != 0x17 || len(got.KeyShares[1].Data) != 65 {
		t.Errorf("key shares %+v", got.KeyShares)
	}
	p := got.PreSharedKey
	if p == nil || len(p.Identities) != 1 || !bytes.Equal(p.Identities[0].Identity, []byte{1, 2, 3, 4}) ||
		p.Identities[0].ObfuscatedTicketAge != 12345 || len(p.Binders) != 1 || len(p.Binders[0]) != 32 {
		t.Errorf("pre_shared_key %+v", p)
	}
	if got.ECH == nil || got.ECH.Type != ECHInner {
		t.Errorf("inner marker %+v", got.ECH)
	}
	var order []uint16
	for _, e := range got.Extensions {
		order = append(order, e.Type)
	}
	if order[len(order)-1] != ExtPreSharedKey || order[len(order)-2] != ExtPadding || order[0] != ExtServerName {
		t.Errorf("extension order %v", order)
	}

	key := newKey(t, KeyOptions{ConfigID: 77, KEM: KEMP256HKDFSHA256,
		CipherSuites: []CipherSuite{{KDF: KDFHKDFSHA384, AEAD: AEADChaCha20Poly1305}}})
	s, err := Seal(&key.Config, msg, nil)
	if err != nil {
		t.Fatal(err)
	}
	outer, err := ParseClientHelloRecords(s.Record)
	if err != nil {
		t.Fatal(err)
	}
	e := outer.ECH
	if outer.ServerName != "public.lab.test" || e == nil || e.Type != ECHOuter || e.ConfigID != 77 ||
		e.CipherSuite != (CipherSuite{KDF: KDFHKDFSHA384, AEAD: AEADChaCha20Poly1305}) || len(e.Enc) != 65 ||
		len(e.Payload) != len(s.EncodedInner)+16 || !bytes.Equal(outer.Raw[e.PayloadOffset:e.PayloadOffset+len(e.Payload)], e.Payload) {
		t.Errorf("outer SNI %q, ECH %+v", outer.ServerName, e)
	}
}
