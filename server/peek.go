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

// stop ends recording and returns the bytes recorded so far.
func (p *peekConn) stop() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.recording = false
	b := p.buf
	p.buf = nil
	return b
}

// noteECHKeys records a GetEncryptedClientHelloKeys call. crypto/tls makes
// it twice: while reading a ClientHello that has an ECH extension (before
// GetConfigForClient, with the outer ClientHelloInfo), and again on every
// TLS 1.3 handshake to build retry configs. Only the first kind counts.
func (p *peekConn) noteECHKeys(info *tls.ClientHelloInfo, ids []uint8) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.helloSeen || p.sawECH || !slices.Contains(info.Extensions, extECH) {
		return
	}
	p.sawECH, p.outerSNI, p.echKeyIDs = true, info.ServerName, ids
}

// extECH is the encrypted_client_hello extension type.
const extECH = 0xfe0d

func (p *peekConn) noteHello(serverName string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.helloSeen {
		p.helloSNI, p.helloSeen = serverName, true
	}
}

// peekOf finds the peekConn behind a ClientHelloInfo's Conn.
func peekOf(c net.Conn) *peekConn {
	p, _ := c.(*peekConn)
	return p
}
