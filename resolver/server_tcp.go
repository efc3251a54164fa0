package resolver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// StreamIdleTimeout is how long a TCP or DoT connection may stay idle
// between queries (RFC 7766 §6.2.3 suggests seconds, not minutes).
const StreamIdleTimeout = 10 * time.Second

// StreamServer serves DNS over a stream listener: Do53 over TCP (RFC 7766)
// or, over a TLS listener, DoT (RFC 7858). Each message is prefixed by its
// 2-byte length; queries on one connection are answered in order.
type StreamServer struct {
	ln        net.Listener
	h         Handler
	transport string
	pad       bool // apply RFC 8467 padding (encrypted transports)

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// StartTCP listens on addr ("" means 127.0.0.1:0) and serves Do53 over
// TCP until Close.
func StartTCP(h Handler, addr string) (*StreamServer, error) {
	ln, err := net.Listen("tcp", orLoopback(addr))
	if err != nil {
		return nil, fmt.Errorf("resolver: tcp: %w", err)
	}
	return ServeStream(ln, h, TransportTCP, false), nil
}

// ServeStream serves h on ln, naming transport in Meta; pad applies
// EDNS(0) padding to responses whose query asked for it.
func ServeStream(ln net.Listener, h Handler, transport string, pad bool) *StreamServer {
	s := &StreamServer{ln: ln, h: h, transport: transport, pad: pad, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.loop()
	return s
}

// Addr returns the address the server listens on.
func (s *StreamServer) Addr() net.Addr { return s.ln.Addr() }

// Close stops the server, closes its connections and waits for them.
func (s *StreamServer) Close() error {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.SetDeadline(time.Now()) // so that a TLS close_notify cannot block
		c.Close()
	}
	s.mu.Unlock()
	err := s.ln.Close()
	s.wg.Wait()
	return err
}

func (s *StreamServer) loop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond) // e.g. too many open files
			continue
		}
		if !s.track(c, true) {
			c.Close()
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.track(c, false)
			defer c.Close()
			s.serveConn(c)
		}()
	}
}

// track adds or removes a connection; it reports false once closed.
func (s *StreamServer) track(c net.Conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !add {
		delete(s.conns, c)
		return true
	}
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *StreamServer) serveConn(c net.Conn) {
	for {
		c.SetReadDeadline(time.Now().Add(StreamIdleTimeout))
		msg, err := readFrame(c)
		if err != nil {
			return
		}
		req := decodeQuery(msg)
		if req == nil || req.Response {
			return // no header to answer: the stream is out of sync
		}
		resp := s.h.Answer(context.Background(), req, Meta{Transport: s.transport, Client: c.RemoteAddr(), UDPSize: dns.MaxMsgSize})
		resp.Truncate(dns.MaxMsgSize)
		resp.Compress = true // Truncate turns it off when the message fits anyway
		if s.pad {
			PadResponse(req, resp) // after the last change in size
		}
		out, err := resp.Pack()
		if err != nil {
			return
		}
		c.SetWriteDeadline(time.Now().Add(StreamIdleTimeout))
		if _, err := c.Write(frame(out)); err != nil {
			return
		}
	}
}
