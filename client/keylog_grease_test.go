package client

import (
	"bytes"
	"crypto/tls"
	"encoding/hex"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/internal/testutil"
)

func TestKeyLogHasECHConfig(t *testing.T) {
	l := newLab(t)
	key, list := newKey(t, 8)
	port := startTLS(t, l.serverTLS(echKeys(key)))
	var kl bytes.Buffer
	o := echWorld(t, l, port, list, "h2")
	o.KeyLog = &kl
	if r := mustFetch(t, "https://secret.lab.test/", o); r.ECH != ECHAccepted {
		t.Fatalf("ech=%s", r.ECH)
	}
	var echLine, hsLine []string
	for _, line := range strings.Split(kl.String(), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 3 && f[0] == "ECH_CONFIG":
			echLine = f
		case len(f) == 3 && f[0] == "CLIENT_HANDSHAKE_TRAFFIC_SECRET":
			hsLine = f
		}
	}
	if echLine == nil || hsLine == nil {
		t.Fatalf("key log lacks ECH_CONFIG or handshake secret:\n%s", kl.String())
	}
	if echLine[2] != hex.EncodeToString(key.Config.Raw) || len(echLine[1]) != 64 {
		t.Errorf("ECH_CONFIG line %v", echLine)
	}
	// RFC 9850: ECH labels use the outer random, the traffic secrets the
	// inner one when ECH was accepted, so the two must differ.
	if echLine[1] == hsLine[1] {
		t.Errorf("outer and inner randoms are equal: %s", echLine[1])
	}
}

func TestGroupsAndALPN(t *testing.T) {
	l := newLab(t)
	key, list := newKey(t, 1)
	port := startTLS(t, l.serverTLS(echKeys(key)))
	groups, err := ParseGroups("p256, x25519")
	if err != nil || len(groups) != 2 || groups[0] != tls.CurveP256 {
		t.Fatalf("ParseGroups: %v %v", groups, err)
	}
	if _, err := ParseGroups("x25519,bogus"); err == nil {
		t.Fatal("ParseGroups accepted an unknown name")
	}
	o := echWorld(t, l, port, list, "h2")
	o.Groups, o.ALPN = groups[:1], []string{"http/1.1"}
	r := mustFetch(t, "https://secret.lab.test/", o)
	if r.Group != tls.CurveP256.String() || r.ALPN != "http/1.1" || r.HTTPProto != "HTTP/1.1" {
		t.Fatalf("group %s alpn %s proto %s", r.Group, r.ALPN, r.HTTPProto)
	}
}

// recordingListener keeps the first bytes of each accepted connection.
type recordingListener struct {
	net.Listener
	mu    sync.Mutex
	first [][]byte
}

type recordingConn struct {
	net.Conn
	l   *recordingListener
	idx int
}

func (l *recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.first = append(l.first, nil)
	return &recordingConn{Conn: c, l: l, idx: len(l.first) - 1}, nil
}

func (c *recordingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.l.mu.Lock()
	if len(c.l.first[c.idx]) < 1<<16 {
		c.l.first[c.idx] = append(c.l.first[c.idx], b[:n]...)
	}
	c.l.mu.Unlock()
	return n, err
}

func TestGREASE(t *testing.T) {
	l := newLab(t)
	for _, withKeys := range []bool{true, false} {
		var keys []tls.EncryptedClientHelloKey
		if withKeys {
			key, _ := newKey(t, 1)
			keys = echKeys(key)
		}
		ln := testutil.ListenTCP(t)
		rl := &recordingListener{Listener: ln}
		testutil.AcceptEach(t, tls.NewListener(rl, l.serverTLS(keys)), func(c net.Conn) { c.(*tls.Conn).Handshake() })
		port := ln.Addr().(*net.TCPAddr).Port

		o := echWorld(t, l, port, nil, "h2")
		o.Mode = ModeGREASE
		r := mustFetch(t, "https://secret.lab.test/", o)
		if r.ECH != ECHGrease || r.HandshakeComplete || r.Note != NoteGREASE || r.Version != "TLS 1.3" || r.Cipher == "" {
			t.Fatalf("keys=%v: %+v", withKeys, r)
		}
		rl.mu.Lock()
		ch, err := ech.ParseClientHelloRecords(rl.first[0])
		rl.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		if ch.ECH == nil || ch.ECH.Type != ech.ECHOuter || len(ch.ECH.Enc) != 32 || len(ch.ECH.Payload) < 32 || ch.ServerName != "secret.lab.test" {
			t.Fatalf("server got ECH %+v SNI %q", ch.ECH, ch.ServerName)
		}
		if r.ClientRandom != hex.EncodeToString(ch.Random) {
			t.Errorf("result's client random %q, the server got %x", r.ClientRandom, ch.Random)
		}
	}
}
