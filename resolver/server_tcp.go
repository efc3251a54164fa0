package resolver

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// streamIdleTimeout is how long a TCP or DoT connection may stay idle
// before a query, after the connection (and TLS handshake) or between
// queries, by default (RFC 7766 §6.2.3 suggests seconds, not minutes).
const streamIdleTimeout = 10 * time.Second

// defaultReadTimeout is how long, by default, a started exchange may take
// on any listener: the rest of a query once its first byte came (Do53
// over TCP, DoT, DoQ), a DoH request's headers and body, a DoT handshake.
const defaultReadTimeout = 10 * time.Second

// Timeouts bound how long a client may hold a connection. A zero field
// means the listener's default.
type Timeouts struct {
	// Idle closes a connection that sends no query for this long: after
	// its handshake or between queries (DoH, DoH3: no request; DoQ: no
	// packet). Defaults: 10 s for Do53 over TCP and DoT,
	// 60 s for DoH and DoH3, 30 s for DoQ.
	Idle time.Duration
	// Read bounds a started exchange: a query once its first byte came,
	// the DoT handshake, a DoH request's headers and then its body, a DoQ
	// stream until its FIN. Default 10 s.
	Read time.Duration
}

// or fills the zero fields with the defaults given.
func (t Timeouts) or(idle, read time.Duration) Timeouts {
	if t.Idle <= 0 {
		t.Idle = idle
	}
	if t.Read <= 0 {
		t.Read = read
	}
	return t
}

// StreamServer serves DNS over a stream listener: Do53 over TCP (RFC 7766)
// or, over a TLS listener, DoT (RFC 7858). Each message is prefixed by its
// 2-byte length; queries on one connection are answered in order.
type StreamServer struct {
	ln        net.Listener
	h         Handler
	transport string
	pad       bool // apply RFC 8467 padding (encrypted transports)
	timeouts  Timeouts
	// fast answers plain queries from the compiled answers of the UDP
	// fast path when h is an Authority, alone or behind the query log and
	// metrics (fastpath.go); obs tells those about each such query.
	fast *Authority
	obs  []func(*fastObs)

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
	ctx    context.Context // of every query; Close cancels it
	cancel context.CancelFunc
}

// StartTCP listens on addr ("" means 127.0.0.1:0) and serves Do53 over
// TCP until Close, with the default timeouts.
func StartTCP(h Handler, addr string) (*StreamServer, error) {
	return startTCPTimeouts(h, addr, Timeouts{})
}

// startTCPTimeouts is StartTCP with timeouts.
func startTCPTimeouts(h Handler, addr string, t Timeouts) (*StreamServer, error) {
	ln, err := net.Listen("tcp", orLoopback(addr))
	if err != nil {
		return nil, fmt.Errorf("resolver: tcp: %w", err)
	}
	return serveStreamTimeouts(ln, h, TransportTCP, false, t), nil
}

// serveStream serves h on ln, naming transport in Meta; pad applies
// EDNS(0) padding to responses whose query asked for it. It uses the
// default timeouts.
func serveStream(ln net.Listener, h Handler, transport string, pad bool) *StreamServer {
	return serveStreamTimeouts(ln, h, transport, pad, Timeouts{})
}

// serveStreamTimeouts is serveStream with timeouts: a connection idle for
// t.Idle before a query is closed, and so is one whose query (or TLS
// handshake, or answer) takes longer than t.Read.
func serveStreamTimeouts(ln net.Listener, h Handler, transport string, pad bool, t Timeouts) *StreamServer {
	s := &StreamServer{ln: ln, h: h, transport: transport, pad: pad, conns: map[net.Conn]struct{}{},
		timeouts: t.or(streamIdleTimeout, defaultReadTimeout)}
	s.fast, s.obs = fastChain(h)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(1)
	go s.loop()
	return s
}

// Addr returns the address the server listens on.
func (s *StreamServer) Addr() net.Addr { return s.ln.Addr() }

// Close stops the server, closes its connections, cancels the context of
// the queries in flight and waits for every connection's goroutine.
func (s *StreamServer) Close() error {
	s.cancel()
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
	t := s.timeouts
	if tc, ok := c.(*tls.Conn); ok {
		c.SetDeadline(time.Now().Add(t.Read))
		if err := tc.Handshake(); err != nil {
			return
		}
	}
	br := bufio.NewReader(c)
	var fs *streamFast
	if s.fast != nil {
		fs = &streamFast{obs: fastObs{transport: s.transport}}
		if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
			fs.obs.client = ta.AddrPort()
		}
	}
	for {
		c.SetReadDeadline(time.Now().Add(t.Idle))
		if _, err := br.Peek(1); err != nil {
			return // idle too long, or gone
		}
		c.SetReadDeadline(time.Now().Add(t.Read))
		msg, err := readFrame(br)
		if err != nil {
			return
		}
		if fs != nil {
			if out := s.answerFast(fs, msg); out != nil {
				c.SetWriteDeadline(time.Now().Add(t.Read))
				if _, err := c.Write(out); err != nil {
					return
				}
				continue
			}
		}
		req := decodeQuery(msg)
		if req == nil || req.Response {
			return // no header to answer: the stream is out of sync
		}
		resp := s.h.Answer(s.ctx, req, Meta{Transport: s.transport, Client: c.RemoteAddr(), UDPSize: dns.MaxMsgSize})
		resp.Truncate(dns.MaxMsgSize)
		resp.Compress = true // Truncate turns it off when the message fits anyway
		if s.pad {
			padResponse(req, resp) // after the last change in size
		}
		out, err := resp.Pack()
		if err != nil {
			return
		}
		c.SetWriteDeadline(time.Now().Add(t.Read))
		if _, err := c.Write(frame(out)); err != nil {
			return
		}
	}
}

// streamFast is one connection's state for the fast path.
type streamFast struct {
	key [maxFastKey]byte
	out []byte
	obs fastObs
}

// answerFast returns the framed fast-path answer to msg, or nil when the
// slow path must answer. Over TCP no answer is truncated, so a compiled
// answer is used whatever its size: it is the slow path's answer, packed
// with compression as the TCP path packs it. Queries with EDNS options
// (padding among them) are not plain, so the RFC 8467 padding of DoT
// is the slow path's to do.
func (s *StreamServer) answerFast(fs *streamFast, msg []byte) []byte {
	var start time.Time
	if len(s.obs) > 0 {
		start = time.Now()
	}
	e, q := s.fast.fastAnswer(msg, dns.MaxMsgSize, &fs.key)
	if e == nil {
		// fastAnswer declines an answer larger than the query's UDP
		// size; over TCP it may still be used.
		if e = s.fast.fastStream(msg, &fs.key, &q); e == nil {
			return nil
		}
	}
	if len(s.obs) > 0 {
		fs.obs.entry, fs.obs.start, fs.obs.elapsed = e, start, time.Since(start)
		for _, f := range s.obs {
			f(&fs.obs)
		}
	}
	fs.out = append(fs.out[:0], byte(len(e.wire)>>8), byte(len(e.wire)))
	fs.out = appendFast(fs.out, e, q)
	return fs.out
}
