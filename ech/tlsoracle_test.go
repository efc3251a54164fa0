package ech

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/echlab/echlab/internal/pki"
)

// The tests in this file use Go's crypto/tls as an independent ECH peer:
// its client encrypts to our ECHConfigList and its server decrypts with our
// private keys, over real loopback sockets.

type oracle struct {
	ca             *pki.CA
	public, secret tls.Certificate
}

func newOracle(t *testing.T) *oracle {
	t.Helper()
	ca, err := pki.NewCA("echlab test CA")
	if err != nil {
		t.Fatal(err)
	}
	o := &oracle{ca: ca}
	if o.public, err = ca.Issue("public.lab.test", []string{"public.lab.test"}, false); err != nil {
		t.Fatal(err)
	}
	if o.secret, err = ca.Issue("secret.lab.test", []string{"secret.lab.test"}, false); err != nil {
		t.Fatal(err)
	}
	return o
}

type handshakeResult struct {
	client, server tls.ConnectionState
	clientErr      error
}

// handshake runs one crypto/tls server with keys on 127.0.0.1:0 and one
// crypto/tls client that offers ECH with configList for secret.lab.test.
func (o *oracle) handshake(t *testing.T, keys []tls.EncryptedClientHelloKey, configList []byte) handshakeResult {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		MinVersion:               tls.VersionTLS13,
		Certificates:             []tls.Certificate{o.public, o.secret},
		EncryptedClientHelloKeys: keys,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	serverState := make(chan tls.ConnectionState, 1)
	go func() {
		defer close(serverState)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if tc.Handshake() != nil {
			return
		}
		var b [1]byte
		if _, err := tc.Read(b[:]); err == nil {
			tc.Write(b[:]) // echo one byte: the connection carries data both ways
		}
		serverState <- tc.ConnectionState()
	}()
	d := &net.Dialer{Timeout: 10 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", ln.Addr().String(), &tls.Config{
		MinVersion:                     tls.VersionTLS13,
		ServerName:                     "secret.lab.test",
		RootCAs:                        o.ca.Pool(),
		EncryptedClientHelloConfigList: configList,
	})
	var r handshakeResult
	if err != nil {
		r.clientErr = err
		return r
	}
	defer conn.Close()
	if _, err := conn.Write([]byte{'x'}); err != nil {
		t.Fatal(err)
	}
	var b [1]byte
	if _, err := conn.Read(b[:]); err != nil || b[0] != 'x' {
		t.Fatalf("echo over the ECH connection: %v %q", err, b)
	}
	r.client = conn.ConnectionState()
	r.server = <-serverState
	return r
}

func requireAccepted(t *testing.T, r handshakeResult) {
	t.Helper()
	if r.clientErr != nil {
		t.Fatalf("client handshake: %v", r.clientErr)
	}
	if !r.client.ECHAccepted || !r.server.ECHAccepted {
		t.Fatalf("ECH not accepted: client %v server %v", r.client.ECHAccepted, r.server.ECHAccepted)
	}
	if r.client.ServerName != "secret.lab.test" || r.server.ServerName != "secret.lab.test" {
		t.Fatalf("server name client %q server %q, want secret.lab.test", r.client.ServerName, r.server.ServerName)
	}
	if got := r.client.PeerCertificates[0].Subject.CommonName; got != "secret.lab.test" {
		t.Fatalf("client saw certificate for %q", got)
	}
}

func requireRejected(t *testing.T, r handshakeResult, wantRetry []byte) {
	t.Helper()
	var rej *tls.ECHRejectionError
	if !errors.As(r.clientErr, &rej) {
		t.Fatalf("client error %v, want *tls.ECHRejectionError", r.clientErr)
	}
	if !bytes.Equal(rej.RetryConfigList, wantRetry) {
		t.Fatalf("retry configs\n got %x\nwant %x", rej.RetryConfigList, wantRetry)
	}
}

// TestTLSOracleAllSuites: every KEM crypto/tls implements × every KDF and
// AEAD, each in a one-suite config so the client must use exactly it.
func TestTLSOracleAllSuites(t *testing.T) {
	o := newOracle(t)
	for _, kemID := range KEMs() {
		if !TLSSupportsKEM(kemID) {
			continue
		}
		base, err := GenerateKey(KeyOptions{KEM: kemID, ConfigID: 7})
		if err != nil {
			t.Fatal(err)
		}
		for _, kdf := range KDFs() {
			for _, aead := range AEADs() {
				cs := CipherSuite{KDF: kdf, AEAD: aead}
				t.Run(fmt.Sprintf("%s/%s", KEMFlagName(kemID), cs), func(t *testing.T) {
					cfg := base.Config
					cfg.CipherSuites, cfg.Raw = []CipherSuite{cs}, nil
					k, err := NewKey(cfg, base.PrivateKey)
					if err != nil {
						t.Fatal(err)
					}
					var ks KeySet
					ks.Add(k, true)
					keys, err := ks.TLSKeys()
					if err != nil {
						t.Fatal(err)
					}
					list, err := ks.ConfigList()
					if err != nil {
						t.Fatal(err)
					}
					requireAccepted(t, o.handshake(t, keys, list))
				})
			}
		}
	}
}

// TestTLSOracleRejection: a client holding a config for a key the server
// does not hold is rejected and told our published list.
func TestTLSOracleRejection(t *testing.T) {
	o := newOracle(t)
	var server, stranger KeySet
	if _, err := server.Rotate(KeyOptions{}, time.Hour, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Rotate(KeyOptions{KEM: KEMXWing}, time.Hour, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := stranger.Rotate(KeyOptions{}, time.Hour, time.Now()); err != nil {
		t.Fatal(err)
	}
	keys, err := server.TLSKeys()
	if err != nil {
		t.Fatal(err)
	}
	clientList, _ := stranger.ConfigList()
	want, _ := server.RetryConfigList()
	requireRejected(t, o.handshake(t, keys, clientList), want)

	// The retry list itself works: the client's second attempt is accepted.
	requireAccepted(t, o.handshake(t, keys, want))

	// Same config, wrong private key: the oracle really decrypts with our
	// key bytes, so this must be rejected.
	good := server.Keys()[0]
	wrong := server.Keys()[1] // another key of a different KEM is no use either
	bad, _ := GenerateKey(KeyOptions{KEM: good.Config.KEM})
	forged := []*Key{{Config: good.Config, PrivateKey: bad.PrivateKey}, wrong}
	var forgedKeys []tls.EncryptedClientHelloKey
	for _, k := range forged {
		tk, err := k.TLSKey(true)
		if err != nil {
			t.Fatal(err)
		}
		forgedKeys = append(forgedKeys, tk)
	}
	goodList, _ := MarshalConfigList(good.Config.Raw)
	retry, _ := MarshalConfigList(good.Config.Raw, wrong.Config.Raw)
	requireRejected(t, o.handshake(t, forgedKeys, goodList), retry)
}

// TestTLSOracleRotation: after Rotate the old config is still accepted
// during the grace period (but not sent as retry config); after Expire it
// is rejected with the new list as retry configs.
func TestTLSOracleRotation(t *testing.T) {
	o := newOracle(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var ks KeySet
	ks.SetClock(func() time.Time { return now }) // grace is judged by the set's clock
	if _, err := ks.Rotate(KeyOptions{KEM: KEMP256HKDFSHA256}, time.Hour, now); err != nil {
		t.Fatal(err)
	}
	oldList, _ := ks.ConfigList()
	if _, err := ks.Rotate(KeyOptions{}, time.Hour, now); err != nil {
		t.Fatal(err)
	}
	newList, _ := ks.ConfigList()
	keys, err := ks.TLSKeys()
	if err != nil {
		t.Fatal(err)
	}
	requireAccepted(t, o.handshake(t, keys, oldList))
	requireAccepted(t, o.handshake(t, keys, newList))

	if n := ks.Expire(now.Add(time.Hour)); n != 1 {
		t.Fatalf("Expire dropped %d keys, want 1", n)
	}
	keys, _ = ks.TLSKeys()
	requireRejected(t, o.handshake(t, keys, oldList), newList)
	requireAccepted(t, o.handshake(t, keys, newList))
}

// TestTLSKeysUnsupportedKEM: X448 and the Kyber draft hybrid are not in
// crypto/tls; TLSKeys says so with ErrUnsupported, TLSKeysSupported skips.
func TestTLSKeysUnsupportedKEM(t *testing.T) {
	var ks KeySet
	for _, kemID := range []uint16{KEMX25519HKDFSHA256, KEMX448HKDFSHA512, KEMX25519Kyber768Dft0} {
		if _, err := ks.Rotate(KeyOptions{KEM: kemID}, time.Hour, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	_, err := ks.TLSKeys()
	var fe *FieldError
	if !errors.Is(err, ErrUnsupported) || !errors.As(err, &fe) || fe.Field != "kem_id" {
		t.Fatalf("TLSKeys error %v, want ErrUnsupported on kem_id", err)
	}
	keys, skipped := ks.TLSKeysSupported()
	if len(keys) != 1 || len(skipped) != 2 {
		t.Fatalf("TLSKeysSupported: %d keys %d skipped, want 1 and 2", len(keys), len(skipped))
	}
	if keys[0].SendAsRetry {
		t.Fatal("the X25519 key is retired (not published) but SendAsRetry is set")
	}
}
