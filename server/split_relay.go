package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/internal/relay"
)

// serve handles one client connection: read the ClientHello, decide, and
// relay. Every outcome is logged; a refused ClientHello is answered with
// a TLS alert; nothing here panics on client bytes.
func (s *Split) serve(c net.Conn) {
	s.track(c)
	defer s.untrack(c)
	bc := newBufConn(c)
	defer bc.release()
	start := s.cfg.Now()
	rec := &ConnRecord{Schema: RecordSchema, Time: start.UTC(), Mode: "split", Transport: TransportTCP,
		ClientAddr: c.RemoteAddr().String(), ECH: ECHNone}
	backend, err := s.handshake(bc, rec)
	rec.HandshakeMS = float64(s.cfg.Now().Sub(start).Microseconds()) / 1000
	if err != nil {
		rec.Error = err.Error()
	}
	s.log.write(rec)
	if err != nil {
		sendAlert(c, err)
		closeClean(c)
		if backend != nil {
			backend.Close()
		}
		return
	}
	if backend == nil { // handed to the public server
		return
	}
	s.track(backend)
	defer s.untrack(backend)
	// Bytes the client sent after its ClientHello came in the same reads:
	// they go first, then the relay takes over.
	if rest := bc.rest(); len(rest) > 0 {
		if _, err := backend.Write(rest); err != nil {
			c.Close()
			backend.Close()
			return
		}
	}
	relay.Pipe(c, backend, s.cfg.IdleTimeout)
}

// handshake reads the client's first flight and connects it to a backend.
// It returns the backend conn to relay with, or nil and no error when the
// connection went to the public server. Errors that the client should
// hear about carry their alert (alertError).
func (s *Split) handshake(c *bufConn, rec *ConnRecord) (net.Conn, error) {
	c.SetReadDeadline(s.cfg.Now().Add(s.cfg.ReadTimeout)) //nolint:errcheck
	f, err := readFlightMax(c, s.cfg.MaxHello, s.cfg.MaxHelloRecords)
	if err != nil {
		return nil, flightAlert(err)
	}
	ch, err := parseHello(f.msg)
	if err != nil {
		return nil, err
	}
	rec.OuterSNI = ch.ServerName
	if ch.ECH != nil && ch.ECH.Type == ech.ECHInner {
		// RFC 9849 §7: a client-facing server never takes a
		// ClientHelloInner from the network.
		rec.ECH = ECHInnerInClear
		return nil, withAlert(alertIllegalParameter, fmt.Errorf("%w: encrypted_client_hello of type inner from the client", ErrClientHello))
	}
	if ch.ECH == nil {
		return s.passthrough(c, f, ch, rec)
	}
	id := ch.ECH.ConfigID
	rec.ConfigID, rec.HPKESuite = &id, suiteName(ch.ECH.CipherSuite)
	var opened *ech.Opened
	if s.cfg.Keys != nil {
		opened, err = ech.Open(s.cfg.Keys, ch, &ech.OpenOptions{TrialDecrypt: s.cfg.TrialDecrypt})
	}
	if err != nil && !errors.Is(err, ech.ErrDecrypt) {
		// It opened, but the ClientHelloInner is malformed (§7.1).
		rec.ECH = ECHRejected
		return nil, withAlert(alertIllegalParameter, fmt.Errorf("%w: %w", ErrClientHello, err))
	}
	if opened == nil {
		rec.ECH = ECHGrease
		if s.cfg.Keys != nil && len(s.cfg.Keys.Lookup(id)) > 0 {
			rec.ECH = ECHRejected
		}
		return s.toPublic(c, f, rec)
	}
	rec.ECH, rec.InnerSNI, rec.Route = ECHAccepted, opened.Inner.ServerName, "ech"
	addr, ok := s.cfg.Routes.Lookup(opened.Inner.ServerName)
	if !ok {
		return nil, withAlert(alertUnrecognizedName, fmt.Errorf("%w for inner SNI %q", ErrNoRoute, opened.Inner.ServerName))
	}
	return s.forwardECH(c, addr, opened, rec)
}

// parseHello parses the first message of a flight as a ClientHello:
// another handshake message is unexpected_message, a ClientHello that
// does not parse decode_error.
func parseHello(msg []byte) (*ech.ClientHello, error) {
	if msg[0] != 1 {
		return nil, withAlert(alertUnexpectedMessage, fmt.Errorf("%w: handshake message type %d", ErrClientHello, msg[0]))
	}
	ch, err := ech.ParseClientHello(msg)
	if err != nil {
		return nil, withAlert(alertDecodeError, fmt.Errorf("%w: %w", ErrClientHello, err))
	}
	return ch, nil
}

// passthrough sends a ClientHello without ECH, unchanged, to the backend
// of its plain SNI.
func (s *Split) passthrough(c *bufConn, f *flight, ch *ech.ClientHello, rec *ConnRecord) (net.Conn, error) {
	rec.Route = "passthrough"
	addr, ok := s.cfg.Routes.Lookup(ch.ServerName)
	if !ok {
		return nil, withAlert(alertUnrecognizedName, fmt.Errorf("%w for SNI %q", ErrNoRoute, ch.ServerName))
	}
	b, err := s.dial(addr, rec)
	if err != nil {
		return nil, err
	}
	c.SetReadDeadline(time.Time{}) //nolint:errcheck
	hdr, err := s.frontHeader(c, b, frontVerdict{ECH: rec.ECH, OuterSNI: ch.ServerName}, ch.Random)
	if err != nil {
		return b, err
	}
	if _, err := b.Write(append(hdr, f.raw()...)); err != nil {
		return b, withAlert(alertInternalError, fmt.Errorf("server: forwarding to %s: %w", addr, err))
	}
	return b, nil
}

// frontHeader is the PROXY v2 header that starts a forwarded connection,
// or nil without a FrontSecret.
func (s *Split) frontHeader(c, b net.Conn, v frontVerdict, random []byte) ([]byte, error) {
	if len(s.cfg.FrontSecret) == 0 {
		return nil, nil
	}
	hdr, err := sealFrontHeader(s.cfg.FrontSecret, addrPort(c.RemoteAddr()), addrPort(c.LocalAddr()), v, random)
	if err != nil {
		return nil, withAlert(alertInternalError, err)
	}
	return hdr, nil
}

// toPublic hands the connection, with the bytes already read, to the
// server for the public name, which rejects ECH and sends retry configs.
func (s *Split) toPublic(c *bufConn, f *flight, rec *ConnRecord) (net.Conn, error) {
	rec.Route, rec.Backend = "public", s.public.Addr()
	rec.RetryConfigs = retries(s.public.cfg.Keys)
	c.SetReadDeadline(time.Time{}) //nolint:errcheck
	read := append(f.raw(), c.rest()...)
	s.public.ServeConn(&prefixConn{Conn: c.Conn, r: io.MultiReader(bytes.NewReader(read), c.Conn)})
	return nil, nil
}

// forwardECH sends the ClientHelloInner to the backend and, when the
// backend answers with a HelloRetryRequest, opens the client's second
// ClientHelloOuter with the same HPKE context and forwards its inner.
func (s *Split) forwardECH(c *bufConn, addr string, opened *ech.Opened, rec *ConnRecord) (net.Conn, error) {
	b, err := s.dial(addr, rec)
	if err != nil {
		return nil, err
	}
	id := opened.ConfigID
	hdr, err := s.frontHeader(c, b, frontVerdict{ECH: ECHAccepted, OuterSNI: opened.Outer.ServerName,
		ConfigID: &id, Suite: opened.Suite}, opened.Inner.Random)
	if err != nil {
		return b, err
	}
	if _, err := b.Write(append(hdr, ech.MarshalRecords(opened.Inner.Raw)...)); err != nil {
		return b, withAlert(alertInternalError, fmt.Errorf("server: forwarding to %s: %w", addr, err))
	}
	b.SetReadDeadline(s.cfg.Now().Add(s.cfg.ReadTimeout)) //nolint:errcheck
	br := getReader(b)
	sh, err := readFlight(br, s.cfg.MaxHello)
	if err != nil {
		putReader(br)
		return b, withAlert(alertInternalError, fmt.Errorf("server: backend %s: %w", addr, err))
	}
	// The rest of the backend's flight (a crypto/tls backend sends its
	// whole first flight at once) came in the same reads: it goes to the
	// client in the same write as the ServerHello.
	out := append(sh.raw(), buffered(br)...)
	putReader(br)
	b.SetReadDeadline(time.Time{}) //nolint:errcheck
	if _, err := c.Write(out); err != nil {
		return b, err
	}
	hello, err := ech.ParseServerHello(sh.msg)
	if err != nil {
		return b, fmt.Errorf("server: backend %s ServerHello: %w", addr, err)
	}
	if !hello.IsHRR {
		c.SetReadDeadline(time.Time{}) //nolint:errcheck
		return b, nil
	}
	rec.HRR = true
	return b, s.forwardSecond(c, b, opened)
}

// forwardSecond opens the client's second ClientHelloOuter, sent after
// the backend's HelloRetryRequest, and forwards its inner.
func (s *Split) forwardSecond(c *bufConn, b net.Conn, opened *ech.Opened) error {
	out, err := openSecond(c, s.cfg.MaxHello, s.cfg.MaxHelloRecords, opened)
	if err != nil {
		return err
	}
	c.SetReadDeadline(time.Time{}) //nolint:errcheck
	_, err = b.Write(out)
	return err
}

// openSecond reads a client's second ClientHelloOuter, sent after a
// HelloRetryRequest, from r and opens it with the first one's HPKE
// context. It returns what to hand on in its place: the flight's leading
// change_cipher_spec records and the ClientHelloInner's records; an error
// carries the alert the client gets (RFC 9849 §7.1.1).
func openSecond(r io.Reader, maxHello, maxRecords int, opened *ech.Opened) ([]byte, error) {
	f2, err := readFlightMax(r, maxHello, maxRecords)
	if err != nil {
		return nil, flightAlert(err)
	}
	ch2, err := parseHello(f2.msg)
	if err != nil {
		return nil, fmt.Errorf("second ClientHello: %w", err)
	}
	if ch2.ECH == nil {
		// §7.1.1: after accepting ECH, a second ClientHelloOuter
		// without the extension is missing_extension.
		return nil, withAlert(alertMissingExtension, fmt.Errorf("%w: second ClientHello without encrypted_client_hello", ErrClientHello))
	}
	opened2, err := opened.Context.OpenSecond(ch2)
	if err != nil {
		// §7.1.1: a second ClientHelloOuter that does not decrypt
		// is decrypt_error, one whose ECH changed illegal_parameter.
		desc := uint8(alertIllegalParameter)
		if errors.Is(err, ech.ErrDecrypt) {
			desc = alertDecryptError
		}
		return nil, withAlert(desc, fmt.Errorf("%w: second ClientHello: %w", ErrClientHello, err))
	}
	// After a HelloRetryRequest crypto/tls expects record version 0x0303,
	// as the client used for its second flight.
	out := withRecordVersion(ech.MarshalRecords(opened2.Inner.Raw), f2.records[1], f2.records[2])
	return append(f2.pre, out...), nil
}

func (s *Split) dial(addr string, rec *ConnRecord) (net.Conn, error) {
	rec.Backend = addr
	b, err := dialStream(addr, s.cfg.DialTimeout)
	if err != nil {
		return nil, withAlert(alertInternalError, fmt.Errorf("server: backend %s: %w", addr, err))
	}
	return b, nil
}

// withRecordVersion sets legacy_record_version of every record in recs.
func withRecordVersion(recs []byte, major, minor byte) []byte {
	for off := 0; off+recordHeaderLen <= len(recs); {
		recs[off+1], recs[off+2] = major, minor
		off += recordHeaderLen + (int(recs[off+3])<<8 | int(recs[off+4]))
	}
	return recs
}

// closeClean ends a connection the relay gives up on with a FIN rather
// than a reset: it stops writing, drains what the client already sent
// (bounded in bytes and time), then closes.
func closeClean(c net.Conn) {
	if tc, ok := c.(interface{ CloseWrite() error }); ok {
		tc.CloseWrite()                                //nolint:errcheck
		c.SetReadDeadline(time.Now().Add(time.Second)) //nolint:errcheck
		io.CopyN(io.Discard, c, DefaultMaxHello)       //nolint:errcheck
	}
	c.Close()
}

// prefixConn replays bytes already read before the rest of the stream.
type prefixConn struct {
	net.Conn
	r io.Reader
}

// Read reads the replayed prefix first, then the connection.
func (p *prefixConn) Read(b []byte) (int, error) { return p.r.Read(b) }
