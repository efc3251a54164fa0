package ech

import (
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"
)

// exchange writes records to a fresh connection to addr and reads the
// server's first handshake message.
type peer struct {
	t    testing.TB
	conn net.Conn
	buf  []byte
}

func dialPeer(t testing.TB, addr string) *peer {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &peer{t: t, conn: c}
}

// roundTrip sends records and returns the next handshake message from the
// server, skipping change_cipher_spec records.
func (p *peer) roundTrip(records []byte) []byte {
	p.t.Helper()
	if _, err := p.conn.Write(records); err != nil {
		p.t.Fatal(err)
	}
	buf, msg, n := readHandshake(p.conn, p.buf)
	if msg == nil {
		_, _, err := HandshakeFromRecords(buf)
		p.t.Fatalf("no handshake message from the server: %v", err)
	}
	p.buf = buf[n:]
	return msg
}

// TestSealAcceptedByGoServer: a ClientHelloOuter made by Seal draws a
// ServerHello from crypto/tls whose confirmation we verify (test 3).
func TestSealAcceptedByGoServer(t *testing.T) {
	cert, _ := labCert(t)
	key := newKey(t, KeyOptions{ConfigID: 3, MaximumNameLength: 40})
	addr := startTLSServer(t, cert, nil, key)
	for _, tc := range []struct {
		name string
		opts SealOptions
	}{
		{"default", SealOptions{}},
		{"compressed", SealOptions{Compress: []uint16{ExtSupportedGroups, ExtSignatureAlgorithms}}},
		{"no padding", SealOptions{Padding: Padding{Mode: PaddingNone}, DropFromOuter: []uint16{ExtALPN}}},
		{"fixed 512", SealOptions{Padding: Padding{Mode: PaddingFixed, Size: 512}}},
	} {
		inner := buildHello(t, helloSpec{name: "secret.lab.test", alpn: []string{"h2"},
			groups: []uint16{0x1d}, shares: []KeyShare{x25519Share(t)}})
		s, err := Seal(&key.Config, inner, &tc.opts)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if s.Outer.ServerName != "public.lab.test" || !bytes.Equal(s.Inner.Raw, inner) {
			t.Errorf("%s: outer SNI %q; inner changed", tc.name, s.Outer.ServerName)
		}
		if tc.opts.Padding.Mode == PaddingFixed && len(s.EncodedInner) != 512 {
			t.Errorf("%s: encoded inner is %d bytes", tc.name, len(s.EncodedInner))
		}
		if tc.opts.Padding.Mode == PaddingRecommended && len(s.EncodedInner)%32 != 0 {
			t.Errorf("%s: encoded inner is %d bytes, not a multiple of 32", tc.name, len(s.EncodedInner))
		}
		sh := dialPeer(t, addr).roundTrip(s.Record)
		ok, err := VerifyAccepted(s.Inner.Raw, sh)
		if err != nil || !ok {
			t.Fatalf("%s: accepted = %v, %v", tc.name, ok, err)
		}
		// The outer ClientHello is not the transcript the server used.
		if ok, _ := VerifyAccepted(s.Outer.Raw, sh); ok {
			t.Errorf("%s: confirmation verified against the outer ClientHello", tc.name)
		}
		parsed, err := ParseServerHello(sh)
		if err != nil || parsed.IsHRR || parsed.SupportedVersion != VersionTLS13 || parsed.KeyShareGroup != 0x1d {
			t.Errorf("%s: ServerHello %+v, %v", tc.name, parsed, err)
		}
		conf, err := AcceptConfirmation(s.Inner.Raw, sh, parsed.CipherSuite)
		if err != nil || !bytes.Equal(conf[:], parsed.Random[24:]) {
			t.Errorf("%s: AcceptConfirmation %x, random ends %x", tc.name, conf, parsed.Random[24:])
		}
		// Our own Open agrees with the server about the inner ClientHello.
		o, err := Open(KeyList{key}, s.Outer, nil)
		if err != nil || !bytes.Equal(o.Inner.Raw, s.Inner.Raw) || o.PaddingLen != s.PaddingLen {
			t.Errorf("%s: Open: %v", tc.name, err)
		}
	}
}

// TestSealRejectedByGoServer: sealed to a key the server does not hold, the
// server handshakes with the outer ClientHello and its ServerHello fails
// the check (test 3).
func TestSealRejectedByGoServer(t *testing.T) {
	cert, _ := labCert(t)
	served := newKey(t, KeyOptions{ConfigID: 1})
	stranger := newKey(t, KeyOptions{ConfigID: 1})
	addr := startTLSServer(t, cert, nil, served)
	inner := buildHello(t, helloSpec{name: "secret.lab.test", groups: []uint16{0x1d}, shares: []KeyShare{x25519Share(t)}})
	s, err := Seal(&stranger.Config, inner, nil)
	if err != nil {
		t.Fatal(err)
	}
	sh := dialPeer(t, addr).roundTrip(s.Record)
	ok, err := VerifyAccepted(s.Inner.Raw, sh)
	if err != nil || ok {
		t.Fatalf("accepted = %v, %v; want a rejection", ok, err)
	}
	if _, err := Open(KeyList{served}, s.Outer, nil); !errors.Is(err, ErrDecrypt) {
		t.Errorf("Open with the server's key: %v, want ErrDecrypt", err)
	}
}

func TestSealErrors(t *testing.T) {
	key := newKey(t, KeyOptions{})
	inner := buildHello(t, helloSpec{name: "secret.lab.test", groups: []uint16{0x1d}, shares: []KeyShare{x25519Share(t)}})
	for _, tc := range []struct {
		name string
		opts SealOptions
		want error
	}{
		{"compress ech", SealOptions{Compress: []uint16{ExtEncryptedHello}}, ErrOuterExtensions},
		{"compress absent", SealOptions{Compress: []uint16{ExtCookie}}, ErrOuterExtensions},
		{"not contiguous", SealOptions{Compress: []uint16{ExtServerName, ExtSupportedVersions}}, ErrOuterExtensions},
		{"fixed too small", SealOptions{Padding: Padding{Mode: PaddingFixed, Size: 10}}, ErrInvalid},
		{"suite not offered", SealOptions{Suite: &CipherSuite{KDF: 1, AEAD: 3}}, ErrUnsupported},
	} {
		if _, err := Seal(&key.Config, inner, &tc.opts); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	tls12 := captureClientHello(t, &tls.Config{ServerName: "secret.lab.test"})
	msg, _, _ := HandshakeFromRecords(tls12)
	if _, err := Seal(&key.Config, msg, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("inner offering TLS 1.2: %v, want ErrInvalid", err)
	}
}
