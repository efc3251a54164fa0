package ech

import (
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/echlab/echlab/internal/testutil"
)

func newKey(t testing.TB, o KeyOptions) *Key {
	t.Helper()
	k, err := GenerateKey(o)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func configList(t testing.TB, keys ...*Key) []byte {
	t.Helper()
	var raws [][]byte
	for _, k := range keys {
		raws = append(raws, k.Config.Raw)
	}
	l, err := MarshalConfigList(raws...)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// startTLSServer runs a crypto/tls server with the given ECH keys on
// 127.0.0.1:0 and returns its address.
func startTLSServer(t testing.TB, cert tls.Certificate, curves []tls.CurveID, keys ...*Key) string {
	t.Helper()
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13,
		NextProtos: []string{"h2"}, CurvePreferences: curves}
	for _, k := range keys {
		cfg.EncryptedClientHelloKeys = append(cfg.EncryptedClientHelloKeys,
			tls.EncryptedClientHelloKey{Config: k.Config.Raw, PrivateKey: k.PrivateKey, SendAsRetry: true})
	}
	return testutil.ServeEach(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		tls.Server(c, cfg).Handshake()
	})
}

// TestOpenGoClientHello: crypto/tls, as an independent ECH client, seals a
// ClientHelloOuter that our Open decrypts (test 2 of the task).
func TestOpenGoClientHello(t *testing.T) {
	key := newKey(t, KeyOptions{ConfigID: 42, MaximumNameLength: 64})
	other := newKey(t, KeyOptions{ConfigID: 9})
	rec := captureClientHello(t, &tls.Config{ServerName: "secret.lab.test", NextProtos: []string{"h2", "acme-tls/1"},
		MinVersion: tls.VersionTLS13, EncryptedClientHelloConfigList: configList(t, key)})
	outer, err := ParseClientHelloRecords(rec)
	if err != nil {
		t.Fatal(err)
	}
	if outer.ServerName != "public.lab.test" || outer.ECH == nil || outer.ECH.Type != ECHOuter || outer.ECH.ConfigID != 42 {
		t.Fatalf("outer: SNI %q ECH %+v", outer.ServerName, outer.ECH)
	}
	o, err := Open(KeyList{other, key}, outer, nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.Inner.ServerName != "secret.lab.test" || !slices.Equal(o.Inner.ALPN, []string{"h2", "acme-tls/1"}) {
		t.Errorf("inner SNI %q ALPN %q", o.Inner.ServerName, o.Inner.ALPN)
	}
	if o.Key != key || o.ConfigID != 42 || o.KEM != 0x20 || o.Trial || len(o.Enc) != 32 {
		t.Errorf("opened with %+v", o)
	}
	if !bytes.Equal(o.Inner.SessionID, outer.SessionID) || bytes.Equal(o.Inner.Random, outer.Random) {
		t.Errorf("session id must be copied from outer and random must differ")
	}
	// Go 1.26's encodeInnerClientHello computes the server_name padding of
	// RFC 9849 §6.1.3 and then overwrites it with the round-up amount, so
	// only 0..31 bytes are added and the total is not a multiple of 32.
	if o.PaddingLen > 31+64 || len(o.EncodedInner) != len(o.Inner.Raw)-4-len(o.Inner.SessionID)+o.PaddingLen-compressedSavings(t, o) {
		t.Errorf("encoded inner %d bytes with padding %d", len(o.EncodedInner), o.PaddingLen)
	}

	// A key set without config_id 42 only opens it by trial decryption.
	renumbered := &Key{Config: key.Config, PrivateKey: key.PrivateKey}
	renumbered.Config.ConfigID = 43 // same key pair, but Raw (the HPKE info) still says 42
	if _, err := Open(KeyList{other, renumbered}, outer, nil); !errors.Is(err, ErrDecrypt) {
		t.Errorf("without trial decryption: %v, want ErrDecrypt", err)
	}
	o2, err := Open(KeyList{other, renumbered}, outer, &OpenOptions{TrialDecrypt: true})
	if err != nil || !o2.Trial || o2.Inner.ServerName != "secret.lab.test" {
		t.Errorf("trial decryption: %v", err)
	}
	// The wrong key alone fails with ErrDecrypt, and a tampered outer
	// ClientHello fails the AAD check.
	if _, err := Open(KeyList{other}, outer, &OpenOptions{TrialDecrypt: true}); !errors.Is(err, ErrDecrypt) {
		t.Errorf("wrong key: %v, want ErrDecrypt", err)
	}
	tampered := slices.Clone(outer.Raw)
	tampered[10] ^= 1 // inside the outer random, covered by the AAD
	tch, _ := ParseClientHello(tampered)
	if _, err := Open(KeyList{key}, tch, nil); !errors.Is(err, ErrDecrypt) {
		t.Errorf("tampered outer: %v, want ErrDecrypt", err)
	}
	plain, _ := ParseClientHelloRecords(captureClientHello(t, &tls.Config{ServerName: "x.lab.test"}))
	if _, err := Open(KeyList{key}, plain, nil); !errors.Is(err, ErrNoECH) {
		t.Errorf("no ECH: %v, want ErrNoECH", err)
	}
}

// TestOpenGoClientHelloPerKEM: crypto/tls seals to each KEM it supports.
func TestOpenGoClientHelloPerKEM(t *testing.T) {
	for _, kem := range []uint16{KEMX25519HKDFSHA256, KEMP256HKDFSHA256, KEMP384HKDFSHA384, KEMP521HKDFSHA512, KEMXWing} {
		key := newKey(t, KeyOptions{KEM: kem, CipherSuites: []CipherSuite{{KDF: 1, AEAD: 3}, {KDF: 1, AEAD: 1}}})
		rec := captureClientHello(t, &tls.Config{ServerName: "secret.lab.test", MinVersion: tls.VersionTLS13,
			EncryptedClientHelloConfigList: configList(t, key)})
		outer, err := ParseClientHelloRecords(rec)
		if err != nil {
			t.Fatal(err)
		}
		o, err := Open(KeyList{key}, outer, nil)
		if err != nil {
			t.Fatalf("KEM %#04x: %v", kem, err)
		}
		if o.Inner.ServerName != "secret.lab.test" || o.KEM != kem {
			t.Errorf("KEM %#04x: inner %q", kem, o.Inner.ServerName)
		}
	}
}

// compressedSavings is how many bytes ech_outer_extensions saved: the
// reconstructed inner's size minus what the encoded form held.
func compressedSavings(t testing.TB, o *Opened) int {
	t.Helper()
	full := 0
	for _, e := range o.Inner.Extensions {
		full += 4 + len(e.Data)
	}
	s := o.EncodedInner[2+32+1:]       // after version, random and the empty session id
	s = s[2+(int(s[0])<<8|int(s[1])):] // cipher suites
	s = s[1+int(s[0]):]                // compression methods
	return full - (int(s[0])<<8 | int(s[1]))
}

// KeySet (keyset.go) is a KeySource.
var _ KeySource = (*KeySet)(nil)
