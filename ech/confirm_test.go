package ech

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// TestHRRWithGoServer: the server prefers P-256, the inner ClientHello
// shares only X25519, so crypto/tls answers with a HelloRetryRequest. Both
// flights go through Seal and Open, and both confirmations verify (test 4).
func TestHRRWithGoServer(t *testing.T) {
	cert, _ := labCert(t)
	key := newKey(t, KeyOptions{ConfigID: 5})
	p := dialPeer(t, startTLSServer(t, cert, []tls.CurveID{tls.CurveP256}, key))
	spec := helloSpec{name: "secret.lab.test", alpn: []string{"h2"}, groups: []uint16{0x1d, 0x17},
		shares: []KeyShare{x25519Share(t)}, random: randBytes(t, 32), session: randBytes(t, 32)}
	s1, err := Seal(&key.Config, buildHello(t, spec), nil)
	if err != nil {
		t.Fatal(err)
	}
	hrr := p.roundTrip(s1.Record)
	parsed, err := ParseServerHello(hrr)
	if err != nil || !parsed.IsHRR || parsed.KeyShareGroup != 0x17 || len(parsed.ECHConfirmation) != 8 {
		t.Fatalf("HRR %+v, %v", parsed, err)
	}
	if ok, err := VerifyHRRAccepted(s1.Inner.Raw, hrr); !ok || err != nil {
		t.Fatalf("HRR confirmation: %v, %v", ok, err)
	}
	if ok, _ := VerifyHRRAccepted(s1.Outer.Raw, hrr); ok {
		t.Error("HRR confirmation verified against the outer ClientHello")
	}

	spec.shares = []KeyShare{p256Share(t)}
	inner2 := buildHello(t, spec)
	s2, err := s1.Context.SealSecond(inner2)
	if err != nil {
		t.Fatal(err)
	}
	if len(s2.Outer.ECH.Enc) != 0 || s2.Outer.ECH.ConfigID != 5 || !bytes.Equal(s2.Outer.Random, s1.Outer.Random) {
		t.Errorf("second outer: enc %d bytes, config id %d", len(s2.Outer.ECH.Enc), s2.Outer.ECH.ConfigID)
	}
	sh := p.roundTrip(s2.Record)
	if ok, err := VerifyAcceptedAfterHRR(s1.Inner.Raw, hrr, s2.Inner.Raw, sh); !ok || err != nil {
		t.Fatalf("ServerHello confirmation after HRR: %v, %v", ok, err)
	}
	if ok, _ := VerifyAccepted(s2.Inner.Raw, sh); ok {
		t.Error("confirmation verified without the HRR in the transcript")
	}

	// Open follows the same two flights.
	o1, err := Open(KeyList{key}, s1.Outer, nil)
	if err != nil || !bytes.Equal(o1.Inner.Raw, s1.Inner.Raw) {
		t.Fatalf("Open first: %v", err)
	}
	if _, err := Open(KeyList{key}, s2.Outer, nil); err == nil {
		t.Error("the second ClientHello opened without the first one's context")
	}
	o2, err := o1.Context.OpenSecond(s2.Outer)
	if err != nil || !bytes.Equal(o2.Inner.Raw, inner2) {
		t.Fatalf("OpenSecond: %v", err)
	}
	if _, err := o1.Context.OpenSecond(s2.Outer); err == nil {
		t.Error("a replayed second ClientHello opened: the sequence number did not advance")
	}
}

// TestObserveGoHRR: crypto/tls on both ends, with an HRR; a proxy in the
// middle that holds the ECH key opens both ClientHelloOuters and verifies
// both confirmations.
func TestObserveGoHRR(t *testing.T) {
	cert, ca := labCert(t)
	key := newKey(t, KeyOptions{ConfigID: 11, MaximumNameLength: 20})
	server := startTLSServer(t, cert, []tls.CurveID{tls.CurveP256}, key)
	up, down, addr := startTee(t, server)

	conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "secret.lab.test", RootCAs: ca.Pool(),
		MinVersion: tls.VersionTLS13, CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256},
		EncryptedClientHelloConfigList: configList(t, key)})
	if err != nil {
		t.Fatal(err)
	}
	if !conn.ConnectionState().ECHAccepted {
		t.Fatal("crypto/tls did not negotiate ECH")
	}
	conn.Close()
	c2s, s2c := up(), down()

	ch1, n, err := HandshakeFromRecords(c2s)
	if err != nil {
		t.Fatal(err)
	}
	ch2, _, err := HandshakeFromRecords(c2s[n:]) // skips the client's change_cipher_spec
	if err != nil {
		t.Fatal(err)
	}
	hrr, n, err := HandshakeFromRecords(s2c)
	if err != nil {
		t.Fatal(err)
	}
	sh, _, err := HandshakeFromRecords(s2c[n:])
	if err != nil {
		t.Fatal(err)
	}
	outer1, _ := ParseClientHello(ch1)
	outer2, _ := ParseClientHello(ch2)
	o1, err := Open(KeyList{key}, outer1, nil)
	if err != nil {
		t.Fatal(err)
	}
	o2, err := o1.Context.OpenSecond(outer2)
	if err != nil {
		t.Fatal(err)
	}
	if o1.Inner.ServerName != "secret.lab.test" || o2.Inner.ServerName != "secret.lab.test" ||
		o2.Inner.KeyShares[0].Group != 0x17 {
		t.Errorf("inner names %q %q, second shares %+v", o1.Inner.ServerName, o2.Inner.ServerName, o2.Inner.KeyShares)
	}
	if ok, err := VerifyHRRAccepted(o1.Inner.Raw, hrr); !ok || err != nil {
		t.Errorf("HRR confirmation: %v %v", ok, err)
	}
	if ok, err := VerifyAcceptedAfterHRR(o1.Inner.Raw, hrr, o2.Inner.Raw, sh); !ok || err != nil {
		t.Errorf("ServerHello confirmation: %v %v", ok, err)
	}
}

// startTee proxies one connection to target and records both directions.
func startTee(t testing.TB, target string) (up, down func() []byte, addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var wg sync.WaitGroup
	var c2s, s2c bytes.Buffer
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		s, err := net.DialTimeout("tcp", target, 5*time.Second)
		if err != nil {
			c.Close()
			return
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		s.SetDeadline(time.Now().Add(5 * time.Second))
		done := make(chan struct{})
		go func() { io.Copy(io.MultiWriter(s, &c2s), c); s.Close(); close(done) }()
		io.Copy(io.MultiWriter(c, &s2c), s)
		c.Close()
		<-done
	}()
	return func() []byte { wg.Wait(); return c2s.Bytes() }, func() []byte { wg.Wait(); return s2c.Bytes() }, ln.Addr().String()
}
