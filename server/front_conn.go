package server

import (
	"net"
	"sync"
)

// frontConn is a backend's connection from a split front that may start
// with a PROXY v2 header (front_proxy.go). The header is read on the first
// Read, that is inside the TLS handshake and its timeout; the bytes after
// it reach crypto/tls untouched. A connection without a header is passed
// through as it came.
type frontConn struct {
	net.Conn

	once    sync.Once
	hdr     *proxyHeader // nil without a header
	pending []byte       // bytes read while looking for the header
	err     error        // a header that does not parse ends the connection
}

// fromFront wraps c to accept a front's header when the server has a
// FrontSecret; without one c is returned as is.
func (s *Server) fromFront(c net.Conn) net.Conn {
	if len(s.cfg.FrontSecret) == 0 {
		return c
	}
	return &frontConn{Conn: c}
}

// Read strips the header, then reads the connection.
func (f *frontConn) Read(b []byte) (int, error) {
	f.once.Do(func() { f.hdr, f.pending, f.err = readProxyHeader(f.Conn) })
	if f.err != nil {
		return 0, f.err
	}
	if len(f.pending) > 0 {
		n := copy(b, f.pending)
		f.pending = f.pending[n:]
		return n, nil
	}
	return f.Conn.Read(b)
}

// Front statuses of ConnRecord.Front.
const (
	// FrontVerified: a split front's header carried a verdict whose HMAC
	// checked out with the server's FrontSecret.
	FrontVerified = "verified"
	// FrontInvalid: a header came but its verdict did not verify; the
	// server judged the connection on the bytes it got.
	FrontInvalid = "invalid"
)

// applyFront fills in what a verified front header says: the real client
// address and, when the front opened a ClientHelloOuter and the server got
// its ClientHelloInner, ECH accepted with the outer facts. Anything else
// leaves the record as the server judged it on its own.
func (s *Server) applyFront(rec *ConnRecord, c net.Conn, d helloFacts) {
	fc, ok := c.(*frontConn)
	if !ok || fc.hdr == nil {
		return
	}
	v, err := openFrontVerdict(s.cfg.FrontSecret, fc.hdr, d.random)
	if err != nil {
		rec.Front = FrontInvalid
		return
	}
	rec.Front = FrontVerified
	rec.FrontAddr, rec.ClientAddr = rec.ClientAddr, fc.hdr.src.String()
	if !d.innerECH || v.ECH != ECHAccepted {
		return
	}
	rec.ECH, rec.InnerSNI, rec.OuterSNI = ECHAccepted, d.sni, v.OuterSNI
	rec.ConfigID, rec.HPKESuite = v.ConfigID, suiteName(v.Suite)
}
