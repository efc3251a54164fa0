package server

import (
	"crypto/tls"
	"net"
	"slices"
	"sync"
	"time"
)

// maxPeek bounds how many bytes a peekConn records: a ClientHello, a
// second ClientHello after HelloRetryRequest and the client's Finished fit
// in far less.
const maxPeek = 64 << 10

// peekConn records the bytes the client sends until the handshake is done,
// so that the server can dissect the ClientHelloOuter that crypto/tls hides
// once it has swapped in the inner one. The tls.Config callbacks also leave
// what they saw here (they get this conn as ClientHelloInfo.Conn).
type peekConn struct {
	net.Conn
	start time.Time

	mu        sync.Mutex
	recording bool
	buf       []byte
	outerSNI  string  // ServerName of the outer ClientHello, from GetEncryptedClientHelloKeys
	echKeyIDs []uint8 // config ids of the keys offered to crypto/tls for this conn
	sawECH    bool    // GetEncryptedClientHelloKeys was called: the ClientHello had an ECH extension
	helloSNI  string  // ServerName seen by GetConfigForClient (inner when accepted)
	helloSeen bool    // GetConfigForClient has run
	logged    bool    // QUIC: the connection reached Accept and was logged
	// keys is the key set as read for the first ClientHello, in the key
	// source's order: crypto/tls's second call (retry configs) and the
	// log get the same keys instead of reading the set again.
	keys  []tls.EncryptedClientHelloKey
	facts *helloFacts // the first ClientHello, dissected once
}

func newPeekConn(c net.Conn, now time.Time) *peekConn {
	return &peekConn{Conn: c, start: now, recording: true}
}

// Read records what it reads while recording is on.
func (p *peekConn) Read(b []byte) (int, error) {
	n, err := p.Conn.Read(b)
	if n > 0 {
		p.mu.Lock()
		if p.recording {
			room := maxPeek - len(p.buf)
			p.buf = append(p.buf, b[:min(n, room)]...)
			if len(p.buf) >= maxPeek {
				p.recording = false
			}
		}
		p.mu.Unlock()
	}
	return n, err
}

// hello ends recording and returns the first ClientHello's facts,
// dissected from the bytes recorded so far unless that was done already.
func (p *peekConn) hello() helloFacts {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.facts == nil {
		f, _ := dissect(p.buf)
		p.facts = &f
	}
	p.recording, p.buf = false, nil
	return *p.facts
}

// setFacts keeps the first ClientHello's facts when the server has parsed
// it already (openConn), and stops recording: it is not dissected again.
func (p *peekConn) setFacts(f helloFacts) {
	p.mu.Lock()
	if p.facts == nil {
		p.facts, p.recording, p.buf = &f, false, nil
	}
	p.mu.Unlock()
}

// dissectLocked dissects the recorded bytes once they hold a whole
// ClientHello (crypto/tls has read it when it calls back) and then stops
// recording: nothing after the first ClientHello is dissected.
func (p *peekConn) dissectLocked() (helloFacts, bool) {
	if p.facts != nil {
		return *p.facts, true
	}
	f, ok := dissect(p.buf)
	if ok {
		p.facts, p.recording, p.buf = &f, false, nil
	}
	return f, ok
}

// noteECHKeys records a GetEncryptedClientHelloKeys call and returns the
// keys crypto/tls should try, in order. crypto/tls makes the call twice:
// while reading a ClientHello that has an ECH extension (before
// GetConfigForClient, with the outer ClientHelloInfo), and again on every
// TLS 1.3 handshake to build retry configs. Only the first kind counts:
// for it the keys whose config id the ClientHello names come first, as
// crypto/tls tries every key in turn (an HPKE decapsulation each) without
// looking at the config id; the others follow, for clients that chose a
// random config id (RFC 9849 §10.4).
func (p *peekConn) noteECHKeys(info *tls.ClientHelloInfo, ks []tls.EncryptedClientHelloKey, ids []uint8) []tls.EncryptedClientHelloKey {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.helloSeen || p.sawECH || !slices.Contains(info.Extensions, extECH) {
		return ks
	}
	p.sawECH, p.outerSNI, p.echKeyIDs, p.keys = true, info.ServerName, ids, ks
	if p.facts == nil && len(p.buf) == 0 { // QUIC: quic-go keeps the ClientHello's bytes
		return ks
	}
	if f, ok := p.dissectLocked(); ok && f.hasECH {
		return configIDFirst(ks, ids, f.configID)
	}
	return ks
}

// keysAgain returns the keys read for this handshake's ClientHello when
// crypto/tls asks again (for retry configs), so that a handshake reads the
// key set once and its retry configs come from the keys it tried.
func (p *peekConn) keysAgain() ([]tls.EncryptedClientHelloKey, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.sawECH || !p.helloSeen || p.keys == nil {
		return nil, false
	}
	return p.keys, true
}

// sentRetries reports whether retry configs went out with this
// handshake's keys: the keys read for its ClientHello, else the source's
// current ones.
func (p *peekConn) sentRetries(src KeySource) bool {
	p.mu.Lock()
	ks := p.keys
	p.mu.Unlock()
	if ks == nil {
		return retries(src)
	}
	return slices.ContainsFunc(ks, func(k tls.EncryptedClientHelloKey) bool { return k.SendAsRetry })
}

// configIDFirst returns ks with the keys whose config id (ids[i] for
// ks[i]) is id moved to the front, the rest in their order; ks itself
// when the first key already has it or none does.
func configIDFirst(ks []tls.EncryptedClientHelloKey, ids []uint8, id uint8) []tls.EncryptedClientHelloKey {
	if len(ids) != len(ks) || len(ids) == 0 || ids[0] == id || !slices.Contains(ids, id) {
		return ks
	}
	out := make([]tls.EncryptedClientHelloKey, 0, len(ks))
	for i, k := range ks {
		if ids[i] == id {
			out = append(out, k)
		}
	}
	for i, k := range ks {
		if ids[i] != id {
			out = append(out, k)
		}
	}
	return out
}

// extECH is the encrypted_client_hello extension type.
const extECH = 0xfe0d

// noteHello records the GetConfigForClient call, made once per handshake
// after the first ClientHello is read, and dissects that ClientHello from
// the recorded bytes (over TCP), which ends the recording.
func (p *peekConn) noteHello(serverName string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.helloSeen {
		p.helloSNI, p.helloSeen = serverName, true
	}
	if len(p.buf) > 0 {
		p.dissectLocked()
	}
}

// peekOf finds the peekConn behind a ClientHelloInfo's Conn: crypto/tls
// hands the callbacks the conn it was given, which over TCP is the
// startConn around the peekConn (Server.handshake).
func peekOf(c net.Conn) *peekConn {
	switch v := c.(type) {
	case *peekConn:
		return v
	case *startConn:
		return peekOf(v.Conn)
	case *openConn:
		p, _ := v.Conn.(*peekConn)
		return p
	}
	return nil
}
