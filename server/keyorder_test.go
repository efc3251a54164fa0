package server

import (
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/echlab/echlab/ech"
)

// keyOrderHandshake runs one handshake over loopback between a crypto/tls
// client offering list and a server with tlsConfig over keys (each
// connection wrapped in a peekConn, as Server.handshake does), and
// returns the config ids of the keys each GetEncryptedClientHelloKeys
// call handed to crypto/tls, and the client's error.
func keyOrderHandshake(t *testing.T, keys KeySource, list []byte) ([][]uint8, error) {
	t.Helper()
	c := Config{Keys: keys, CA: testCA(t)}
	c, err := c.populate()
	if err != nil {
		t.Fatal(err)
	}
	certs, err := issueCerts(c.CA, c.PublicName, c.Names)
	if err != nil {
		t.Fatal(err)
	}
	var known idSet
	cfg := tlsConfig(&c, certs, &known, nil)
	var mu sync.Mutex
	var calls [][]uint8
	get := cfg.GetEncryptedClientHelloKeys
	cfg.GetEncryptedClientHelloKeys = func(info *tls.ClientHelloInfo) ([]tls.EncryptedClientHelloKey, error) {
		ks, err := get(info)
		mu.Lock()
		calls = append(calls, configIDs(ks))
		mu.Unlock()
		return ks, err
	}
	_, cerr := peekHandshake(t, cfg, clientTLS(t, "secret.lab.test", list))
	mu.Lock()
	defer mu.Unlock()
	return calls, cerr
}

// peekHandshake runs one handshake over loopback between a client with
// ccfg and a server with cfg on a peekConn, as Server.handshake does, and
// returns the server's peekConn (once its handshake is over) and the
// client's error. The server's conns are stacked as Server.handshake
// stacks them. A handshake that succeeds must have accepted ECH exactly
// when the client offered it.
func peekHandshake(t *testing.T, cfg, ccfg *tls.Config) (*peekConn, error) {
	t.Helper()
	near, far := loopbackPair(t)
	p := newPeekConn(far, time.Now())
	srvDone := make(chan struct{})
	go func() {
		defer close(srvDone)
		tc := tls.Server(&startConn{Conn: p}, cfg)
		tc.Handshake() //nolint:errcheck // the client reports
		tc.Close()
	}()
	tc := tls.Client(near, ccfg)
	cerr := tc.Handshake()
	if cerr == nil && tc.ConnectionState().ECHAccepted != (ccfg.EncryptedClientHelloConfigList != nil) {
		t.Fatalf("ECHAccepted = %v", tc.ConnectionState().ECHAccepted)
	}
	tc.Close()
	<-srvDone
	return p, cerr
}

// loopbackPair returns both ends of a loopback TCP connection.
func loopbackPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	near, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	far, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { near.Close(); far.Close() })
	return near, far
}

// countingKeys counts the reads of a key source.
type countingKeys struct {
	KeySource
	reads atomic.Int32
}

func (k *countingKeys) TLSKeys() ([]tls.EncryptedClientHelloKey, error) {
	k.reads.Add(1)
	return k.KeySource.TLSKeys()
}

// TestECHKeyOrderByConfigID: crypto/tls tries the keys in the order it
// gets them, an HPKE decapsulation each, without looking at the config
// id. For a client on the older of two keys (after a rotation, until the
// DNS TTL runs out) the server hands it that key first, and the rest
// after it; the second call, whose keys become the retry configs, still
// gets the key source's order, read once per handshake.
func TestECHKeyOrderByConfigID(t *testing.T) {
	newer, older := newKey(t, 2), newKey(t, 1)
	keys := &countingKeys{KeySource: NewStaticKeys(newer, older)}
	calls, err := keyOrderHandshake(t, keys, configList(t, older))
	if err != nil {
		t.Fatal(err)
	}
	want := [][]uint8{{1, 2}, {2, 1}}
	if !slices.EqualFunc(calls, want, slices.Equal) {
		t.Fatalf("keys handed to crypto/tls per call: %v, want %v", calls, want)
	}
	if n := keys.reads.Load(); n != 1 {
		t.Fatalf("the key set was read %d times for one handshake, want once", n)
	}
	// A client on the newest key: nothing to move.
	calls, err = keyOrderHandshake(t, keys, configList(t, newer))
	if err != nil {
		t.Fatal(err)
	}
	if want := [][]uint8{{2, 1}, {2, 1}}; !slices.EqualFunc(calls, want, slices.Equal) {
		t.Fatalf("keys handed to crypto/tls per call: %v, want %v", calls, want)
	}
}

// TestECHKeyOrderRetryConfigs: a ClientHello naming a config id the
// server does not hold still gets every key tried (a client may pick a
// random id, RFC 9849 §10.4) and then retry configs in the key source's
// order, the published ECHConfigList.
func TestECHKeyOrderRetryConfigs(t *testing.T) {
	newer, older := newKey(t, 2), newKey(t, 1)
	ks := &ech.KeySet{}
	ks.Add(older, true)
	ks.Add(newer, true)
	stranger := newKey(t, 9)
	calls, err := keyOrderHandshake(t, UsableKeys(ks), configList(t, stranger))
	var rej *tls.ECHRejectionError
	if !errors.As(err, &rej) {
		t.Fatalf("client error %v, want an ECH rejection", err)
	}
	published, err := ks.ConfigList()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rej.RetryConfigList, published) {
		t.Fatalf("retry configs %x, want the published list %x", rej.RetryConfigList, published)
	}
	if len(calls) != 2 || len(calls[0]) != 2 || !slices.Equal(calls[0], calls[1]) {
		t.Fatalf("keys handed to crypto/tls per call: %v, want both keys twice in one order", calls)
	}
}
