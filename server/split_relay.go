package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/echlab/echlab/ech"
)

// serve handles one client connection: read the ClientHello, decide, and
// relay. Every outcome is logged; nothing here panics on client bytes.
func (s *Split) serve(c net.Conn) {
	s.track(c)
	defer s.untrack(c)
	start := s.cfg.Now()
	rec := &ConnRecord{Schema: RecordSchema, Time: start.UTC(), Mode: "split", Transport: TransportTCP,
		ClientAddr: c.RemoteAddr().String(), ECH: ECHNone}
	backend, err := s.handshake(c, rec)
	rec.HandshakeMS = float64(s.cfg.Now().Sub(start).Microseconds()) / 1000
	if err != nil {
		rec.Error = err.Error()
	}
	s.log.write(rec)
	if err != nil {
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
	relay(c, backend)
}

// handshake reads the client's first flight and connects it to a backend.
// It returns the backend conn to relay with, or nil and no error when the
// connection went to the public server.
func (s *Split) handshake(c net.Conn, rec *ConnRecord) (net.Conn, error) {
	c.SetReadDeadline(s.cfg.Now().Add(s.cfg.ReadTimeout)) //nolint:errcheck
	f, err := readFlight(c, s.cfg.MaxHello)
	if err != nil {
		return nil, err
	}
	ch, err := ech.ParseClientHello(f.msg)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrClientHello, err)
	}
	rec.OuterSNI = ch.ServerName
	if ch.ECH == nil || ch.ECH.Type != ech.ECHOuter {
		return s.passthrough(c, f, ch, rec)
	}
	id := ch.ECH.ConfigID
	rec.ConfigID, rec.HPKESuite = &id, suiteName(ch.ECH.CipherSuite)
	var opened *ech.Opened
	if s.cfg.Keys != nil {
		opened, err = ech.Open(s.cfg.Keys, ch, &ech.OpenOptions{TrialDecrypt: s.cfg.TrialDecrypt})
	}
	if opened == nil {
		rec.ECH = ECHGrease
		if s.cfg.Keys != nil && len(s.cfg.Keys.Lookup(id)) > 0 {
			rec.ECH = ECHRejected
		}
		if err != nil && !errors.Is(err, ech.ErrDecrypt) {
			rec.Error = err.Error()
		}
		return s.toPublic(c, f, rec)
	}
	rec.ECH, rec.InnerSNI, rec.Route = ECHAccepted, opened.Inner.ServerName, "ech"
	addr, ok := s.cfg.Routes.Lookup(opened.Inner.ServerName)
	if !ok {
		return nil, fmt.Errorf("%w for inner SNI %q", ErrNoRoute, opened.Inner.ServerName)
	}
	return s.forwardECH(c, addr, opened, rec)
}

// passthrough sends a ClientHello without ECH, unchanged, to the backend
// of its plain SNI.
func (s *Split) passthrough(c net.Conn, f *flight, ch *ech.ClientHello, rec *ConnRecord) (net.Conn, error) {
	rec.Route = "passthrough"
	addr, ok := s.cfg.Routes.Lookup(ch.ServerName)
	if !ok {
		return nil, fmt.Errorf("%w for SNI %q", ErrNoRoute, ch.ServerName)
	}
	b, err := s.dial(addr, rec)
	if err != nil {
		return nil, err
	}
	c.SetReadDeadline(time.Time{}) //nolint:errcheck
	if _, err := b.Write(f.raw()); err != nil {
		return b, fmt.Errorf("server: forwarding to %s: %w", addr, err)
	}
	return b, nil
}

// toPublic hands the connection, with the bytes already read, to the
// server for the public name, which rejects ECH and sends retry configs.
func (s *Split) toPublic(c net.Conn, f *flight, rec *ConnRecord) (net.Conn, error) {
	rec.Route, rec.Backend = "public", s.public.Addr()
	rec.RetryConfigs = retries(s.public.cfg.Keys)
	c.SetReadDeadline(time.Time{}) //nolint:errcheck
	s.public.ServeConn(&prefixConn{Conn: c, r: io.MultiReader(bytes.NewReader(f.raw()), c)})
	return nil, nil
}

// forwardECH sends the ClientHelloInner to the backend and, when the
// backend answers with a HelloRetryRequest, opens the client's second
// ClientHelloOuter with the same HPKE context and forwards its inner.
func (s *Split) forwardECH(c net.Conn, addr string, opened *ech.Opened, rec *ConnRecord) (net.Conn, error) {
	b, err := s.dial(addr, rec)
	if err != nil {
		return nil, err
	}
	if _, err := b.Write(ech.MarshalRecords(opened.Inner.Raw)); err != nil {
		return b, fmt.Errorf("server: forwarding to %s: %w", addr, err)
	}
	b.SetReadDeadline(s.cfg.Now().Add(s.cfg.ReadTimeout)) //nolint:errcheck
	sh, err := readFlight(b, s.cfg.MaxHello)
	if err != nil {
		return b, fmt.Errorf("server: backend %s: %w", addr, err)
	}
	b.SetReadDeadline(time.Time{}) //nolint:errcheck
	if _, err := c.Write(sh.raw()); err != nil {
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
	f2, err := readFlight(c, s.cfg.MaxHello)
	if err != nil {
		return b, err
	}
	ch2, err := ech.ParseClientHello(f2.msg)
	if err != nil {
		return b, fmt.Errorf("%w: second ClientHello: %w", ErrClientHello, err)
	}
	opened2, err := opened.Context.OpenSecond(ch2)
	if err != nil {
		return b, fmt.Errorf("%w: second ClientHello: %w", ErrClientHello, err)
	}
	c.SetReadDeadline(time.Time{}) //nolint:errcheck
	// After a HelloRetryRequest crypto/tls expects record version 0x0303,
	// as the client used for its second flight.
	out := withRecordVersion(ech.MarshalRecords(opened2.Inner.Raw), f2.records[1], f2.records[2])
	if _, err := b.Write(append(f2.pre, out...)); err != nil {
		return b, err
	}
	return b, nil
}

func (s *Split) dial(addr string, rec *ConnRecord) (net.Conn, error) {
	rec.Backend = addr
	b, err := net.DialTimeout("tcp", addr, s.cfg.DialTimeout)
	if err != nil {
		return nil, fmt.Errorf("server: backend %s: %w", addr, err)
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

// relay copies bytes both ways until both directions end.
func relay(a, b net.Conn) {
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		io.Copy(dst, src) //nolint:errcheck // the relay ends either way
		if tc, ok := dst.(interface{ CloseWrite() error }); ok {
			tc.CloseWrite() //nolint:errcheck
		} else {
			dst.Close()
		}
		done <- struct{}{}
	}
	go pipe(a, b)
	go pipe(b, a)
	<-done
	<-done
	a.Close()
	b.Close()
}
