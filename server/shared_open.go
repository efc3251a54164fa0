package server

import (
	"io"
	"net"
	"slices"
	"sync"

	"github.com/echlab/echlab/ech"
)

// A shared-mode server opens ECH over TCP itself, the way a split front
// does, and hands crypto/tls the ClientHelloInner as a split backend gets
// it: crypto/tls then confirms ECH (RFC 9849 §7.2) and completes the
// handshake without its own HPKE work. crypto/tls's costs two X25519
// operations per key it tries (it rebuilds the key pair from the private
// key's bytes on every handshake, then decapsulates); ech.Open's one, the
// decapsulation, on a key parsed once. Everything that does not open —
// no ECH, GREASE, an unknown or stale config id, a payload that does not
// decrypt, a malformed ClientHelloInner, a ClientHello that is not read
// whole here — reaches crypto/tls byte for byte as the client sent it, so
// its verdicts (rejection with retry configs, alerts) stay crypto/tls's.

// openKeys returns the keys a server opens ECH with itself: those of src
// that crypto/tls could also use (a config with another KEM stays
// unaccepted, as it is when crypto/tls decides), or nil when src is
// neither backed by an ech.KeySet nor a StaticKeys (crypto/tls then opens
// ECH itself).
func openKeys(src KeySource) ech.KeySource {
	switch k := src.(type) {
	case supportedKeys:
		return tlsKEMKeys{k.ks}
	case *ech.KeySet:
		return tlsKEMKeys{k}
	case StaticKeys:
		// Parsed once: the keys never change. One that does not
		// parse is left to crypto/tls.
		var list ech.KeyList
		for _, tk := range k {
			c, err := ech.ParseConfig(tk.Config)
			if err != nil {
				continue
			}
			if key, err := ech.NewKey(*c, tk.PrivateKey); err == nil {
				list = append(list, key)
			}
		}
		return tlsKEMKeys{list}
	}
	return nil
}

// tlsKEMKeys is an ech.KeySource that leaves out keys whose KEM crypto/tls
// lacks.
type tlsKEMKeys struct{ ks ech.KeySource }

// Lookup returns the live keys with this config id.
func (t tlsKEMKeys) Lookup(id uint8) []*ech.Key { return tlsKEMOnly(t.ks.Lookup(id)) }

// Keys returns every live key.
func (t tlsKEMKeys) Keys() []*ech.Key { return tlsKEMOnly(t.ks.Keys()) }

func tlsKEMOnly(ks []*ech.Key) []*ech.Key {
	return slices.DeleteFunc(ks, func(k *ech.Key) bool { return !ech.TLSSupportsKEM(k.Config.KEM) })
}

// openConn sits between crypto/tls and the client's connection. Its first
// Read reads the client's first flight, and when the ClientHelloOuter
// opens with the server's keys, crypto/tls reads the ClientHelloInner
// instead. When crypto/tls answers with a HelloRetryRequest, the client's
// second ClientHelloOuter is opened with the same HPKE context (its inner
// goes to crypto/tls; one that does not open gets the alert §7.1.1 names).
// Only crypto/tls's goroutine reads and writes it during the handshake;
// opened is read after it, under mu.
type openConn struct {
	net.Conn
	keys ech.KeySource

	started   bool   // the first flight was read
	pending   []byte // bytes crypto/tls reads before the connection's
	sawWrite  bool   // crypto/tls's first flight was looked at
	hrr       bool   // it was a HelloRetryRequest after an opened ClientHello
	secondErr error  // the second ClientHello did not open: every Read fails

	mu     sync.Mutex
	opened *ech.Opened
}

func newOpenConn(c net.Conn, keys ech.KeySource) *openConn { return &openConn{Conn: c, keys: keys} }

// accepted returns the first ClientHello as opened, or nil when crypto/tls
// got the client's bytes as they came.
func (o *openConn) accepted() *ech.Opened {
	if o == nil {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.opened
}

// Read hands crypto/tls the (opened) ClientHellos, then the connection.
func (o *openConn) Read(b []byte) (int, error) {
	if !o.started {
		o.started = true
		o.first()
	}
	if o.hrr && o.secondErr == nil && len(o.pending) == 0 {
		o.hrr = false
		o.second()
	}
	if o.secondErr != nil {
		return 0, o.secondErr
	}
	if len(o.pending) > 0 {
		n := copy(b, o.pending)
		o.pending = o.pending[n:]
		return n, nil
	}
	return o.Conn.Read(b)
}

// Write notes whether crypto/tls's first flight starts with a
// HelloRetryRequest (crypto/tls writes a flight at once).
func (o *openConn) Write(b []byte) (int, error) {
	if !o.sawWrite {
		o.sawWrite = true
		o.hrr = o.accepted() != nil && isHelloRetryRequest(b)
	}
	return o.Conn.Write(b)
}

// isHelloRetryRequest reports whether b starts with a handshake record
// holding a ServerHello whose random is the HelloRetryRequest one.
func isHelloRetryRequest(b []byte) bool {
	const random = recordHeaderLen + 4 + 2 // record header, handshake header, legacy_version
	return len(b) >= random+32 && b[0] == recordHandshake && b[recordHeaderLen] == 2 &&
		ech.IsHelloRetryRequestRandom(b[random:random+32])
}

// first reads the client's first flight and opens it, or leaves every
// byte read for crypto/tls.
func (o *openConn) first() {
	r := &sniffReader{r: o.Conn}
	defer func() {
		if o.opened == nil {
			o.pending = r.buf
		}
	}()
	f, err := readFlight(r, DefaultMaxHello)
	if err != nil || f.msg[0] != 1 {
		return
	}
	ch, err := ech.ParseClientHello(f.msg)
	if err != nil {
		return
	}
	if p, ok := o.Conn.(*peekConn); ok {
		p.setFacts(factsOf(ch)) // the log's facts, without parsing it again
	}
	if ch.ECH == nil || ch.ECH.Type != ech.ECHOuter {
		return
	}
	// One read of the key source per handshake: a watched key set
	// checks its folder on each (KeyWatcher.Check).
	keys := ech.KeyList(o.keys.Lookup(ch.ECH.ConfigID))
	if len(keys) == 0 {
		return
	}
	opened, err := ech.Open(keys, ch, nil)
	if err != nil {
		return
	}
	inner := withRecordVersion(ech.MarshalRecords(opened.Inner.Raw), f.records[1], f.records[2])
	o.pending = slices.Concat(f.pre, inner, r.rest())
	o.mu.Lock()
	o.opened = opened
	o.mu.Unlock()
}

// second reads the client's second ClientHelloOuter and opens it.
func (o *openConn) second() {
	r := &sniffReader{r: o.Conn}
	out, err := openSecond(r, DefaultMaxHello, DefaultMaxHelloRecords, o.accepted())
	if err != nil {
		sendAlert(o.Conn, err)
		o.secondErr = err
		return
	}
	o.pending = append(out, r.rest()...)
}

// sniffReader reads a connection in chunks and keeps every byte read, so
// that what a parser took can be handed on as it came, or replaced and
// followed by what was read past it.
type sniffReader struct {
	r   io.Reader
	buf []byte // every byte read
	off int    // bytes handed to the parser
}

// Read hands on buffered bytes, reading the connection when there are none.
func (s *sniffReader) Read(p []byte) (int, error) {
	if s.off == len(s.buf) {
		if cap(s.buf)-len(s.buf) < 2048 {
			s.buf = slices.Grow(s.buf, max(4096, len(s.buf)))
		}
		n, err := s.r.Read(s.buf[len(s.buf):cap(s.buf)])
		s.buf = s.buf[:len(s.buf)+n]
		if n == 0 {
			if err == nil {
				err = io.ErrNoProgress
			}
			return 0, err
		}
	}
	n := copy(p, s.buf[s.off:])
	s.off += n
	return n, nil
}

// rest returns what was read past the parser.
func (s *sniffReader) rest() []byte { return s.buf[s.off:] }
