package resolver

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/miekg/dns"
	"github.com/quic-go/quic-go"
)

// alpnDoQ is the ALPN token of DNS over QUIC (RFC 9250).
const alpnDoQ = "doq"

// DoQ error codes (RFC 9250 section 4.3), used to close connections and
// reset streams.
const (
	DoQNoError          = 0x0
	DoQInternalError    = 0x1
	DoQProtocolError    = 0x2
	DoQRequestCancelled = 0x3
	DoQExcessiveLoad    = 0x4
	DoQUnspecifiedError = 0x5
)

// Errors of DoQ message parsing; each is a protocol error (RFC 9250
// section 4.3.3) that closes the connection with DoQProtocolError.
var (
	ErrDoQLength    = errors.New("resolver: doq: message length does not match the stream")
	ErrDoQMessageID = errors.New("resolver: doq: message ID is not 0")
	ErrDoQMalformed = errors.New("resolver: doq: malformed DNS message")
	ErrDoQKeepalive = errors.New("resolver: doq: edns-tcp-keepalive option present")
)

// DoQOptions configures StartDoQ. The zero value listens on 127.0.0.1 on
// a free port, but a certificate is required.
type DoQOptions struct {
	TLSListenerOptions
	// StreamTimeout bounds how long a stream may take to deliver its
	// query and STREAM FIN; 0 means 10 s.
	StreamTimeout time.Duration
	// IdleTimeout is the QUIC idle timeout: a connection with no packet
	// for this long is dropped; 0 means 30 s. quic-go peers take any
	// value under 5 s as 5 s on their side.
	IdleTimeout time.Duration
}

// DoQServer is a running DNS-over-QUIC listener.
type DoQServer struct {
	h       Handler
	opts    DoQOptions
	conn    net.PacketConn
	ln      *quic.Listener
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	closeMu sync.Once
}

// StartDoQ listens on o.Addr (UDP) and serves DNS over QUIC until Close:
// one query per client-initiated bidirectional stream, each message
// behind a 2-octet length, ID 0, the response followed by STREAM FIN.
func StartDoQ(h Handler, o DoQOptions) (*DoQServer, error) {
	conf, err := o.ServerConfig(alpnDoQ)
	if err != nil {
		return nil, err
	}
	conf.MinVersion = 0x0304 // QUIC is TLS 1.3 only
	if o.StreamTimeout == 0 {
		o.StreamTimeout = 10 * time.Second
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = 30 * time.Second
	}
	conn, err := net.ListenPacket("udp", o.addr())
	if err != nil {
		return nil, fmt.Errorf("resolver: doq: %w", err)
	}
	ln, err := quic.Listen(conn, conf, &quic.Config{MaxIdleTimeout: o.IdleTimeout})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("resolver: doq: %w", err)
	}
	s := &DoQServer{h: h, opts: o, conn: conn, ln: ln}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Addr returns the UDP address the server listens on.
func (s *DoQServer) Addr() net.Addr { return s.conn.LocalAddr() }

// URL returns the server's URL for NewClient, quic://ADDR.
func (s *DoQServer) URL() string { return "quic://" + s.conn.LocalAddr().String() }

// Close stops the server, closing every connection with DOQ_NO_ERROR,
// and waits for its goroutines: each connection's and each stream's.
func (s *DoQServer) Close() error {
	var err error
	s.closeMu.Do(func() {
		s.cancel()
		err = s.ln.Close()
		s.wg.Wait()
		s.conn.Close()
	})
	return err
}

func (s *DoQServer) accept() {
	defer s.wg.Done()
	for {
		conn, err := s.ln.Accept(s.ctx)
		if err != nil {
			return
		}
		s.wg.Add(1)
		go s.serveConn(conn)
	}
}

// serveConn serves the streams of conn until it closes; Close closes it
// with DOQ_NO_ERROR. Every goroutine it starts is counted in s.wg (s.wg
// counts serveConn itself while it adds them).
func (s *DoQServer) serveConn(conn *quic.Conn) {
	defer s.wg.Done()
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		select {
		case <-s.ctx.Done():
			conn.CloseWithError(DoQNoError, "server closing")
		case <-conn.Context().Done():
		}
	}()
	go func() {
		defer s.wg.Done()
		// A client may not open unidirectional streams (RFC 9250 4.3.3).
		if _, err := conn.AcceptUniStream(conn.Context()); err == nil {
			conn.CloseWithError(DoQProtocolError, "unidirectional stream")
		}
	}()
	// Each stream goes to an idle worker of the connection, or to a new
	// one. Workers stay until the connection ends: a new goroutine per
	// query would grow its stack again for each (runtime.copystack took
	// 11% of the server's CPU under DoQ load).
	work := make(chan *quic.Stream)
	for {
		str, err := conn.AcceptStream(conn.Context())
		if err != nil {
			return
		}
		select {
		case work <- str:
		default:
			s.wg.Add(1)
			go s.streamWorker(conn, str, work)
		}
	}
}

// streamWorker answers str, then each stream serveConn hands it, until
// the connection ends.
func (s *DoQServer) streamWorker(conn *quic.Conn, str *quic.Stream, work <-chan *quic.Stream) {
	defer s.wg.Done()
	for {
		s.serveStream(conn, str)
		select {
		case str = <-work:
		case <-conn.Context().Done():
			return
		}
	}
}

// serveStream answers the query on str. A stream still reading when the
// connection closes (Close, idle timeout) ends with a read error.
func (s *DoQServer) serveStream(conn *quic.Conn, str *quic.Stream) {
	str.SetReadDeadline(time.Now().Add(s.opts.StreamTimeout))
	wire, err := io.ReadAll(io.LimitReader(str, 2+maxMessage+1))
	if err != nil {
		var se *quic.StreamError
		if errors.As(err, &se) && se.Remote {
			// The client reset its stream: abandon the transaction.
			str.CancelWrite(DoQRequestCancelled)
			return
		}
		// No STREAM FIN in time, or the connection went away.
		conn.CloseWithError(DoQProtocolError, "no STREAM FIN after the query")
		return
	}
	req, err := parseDoQMessage(wire)
	if err != nil {
		conn.CloseWithError(DoQProtocolError, err.Error())
		return
	}
	meta := Meta{Transport: TransportDoQ, Client: conn.RemoteAddr(), UDPSize: maxMessage}
	resp := s.h.Answer(str.Context(), req, meta)
	if resp == nil { // a broken Handler: say so on this stream only
		str.CancelWrite(DoQInternalError)
		return
	}
	resp.Id = 0
	removeKeepalive(resp)
	padResponse(req, resp)
	out, err := packDoQ(resp)
	if err != nil {
		str.CancelWrite(DoQInternalError)
		return
	}
	str.Write(out)
	str.Close()
}

// parseDoQMessage parses one DoQ message, the whole content of a stream:
// a 2-octet length, then exactly that many octets of DNS message with
// ID 0 and no edns-tcp-keepalive option. Errors wrap the ErrDoQ sentinels.
func parseDoQMessage(b []byte) (*dns.Msg, error) {
	if len(b) < 2 || int(binary.BigEndian.Uint16(b)) != len(b)-2 {
		return nil, fmt.Errorf("%w: %d octets on the stream", ErrDoQLength, len(b))
	}
	m := new(dns.Msg)
	if err := m.Unpack(b[2:]); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDoQMalformed, err)
	}
	if m.Id != 0 {
		return nil, fmt.Errorf("%w: %d", ErrDoQMessageID, m.Id)
	}
	if opt := m.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if o.Option() == dns.EDNS0TCPKEEPALIVE {
				return nil, ErrDoQKeepalive
			}
		}
	}
	return m, nil
}

// packDoQ packs m behind its 2-octet length.
func packDoQ(m *dns.Msg) ([]byte, error) {
	b, err := m.Pack()
	if err != nil {
		return nil, err
	}
	if len(b) > maxMessage {
		return nil, fmt.Errorf("resolver: doq: message of %d octets", len(b))
	}
	return frame(b), nil
}

// removeKeepalive drops edns-tcp-keepalive, which DoQ forbids, from m.
func removeKeepalive(m *dns.Msg) {
	opt := m.IsEdns0()
	if opt == nil {
		return
	}
	kept := make([]dns.EDNS0, 0, len(opt.Option))
	for _, o := range opt.Option {
		if o.Option() != dns.EDNS0TCPKEEPALIVE {
			kept = append(kept, o)
		}
	}
	opt.Option = kept
}
