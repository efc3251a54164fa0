package server

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/internal/inflight"
	"github.com/echlab/echlab/internal/pki"
	"github.com/echlab/echlab/internal/timeout"
)

// Server is a running shared-mode (or baseline) HTTPS server.
type Server struct {
	cfg    Config
	certs  *certSet
	tlsCfg *tls.Config
	log    *recordLog
	known  idSet         // config ids ever held
	open   ech.KeySource // keys the server opens ECH over TCP with itself (openConn); nil: crypto/tls does

	ln    net.Listener // TCP
	ready *connQueue   // handshaken *tls.Conns for http.Server
	http  *http.Server
	h3    *h3Server // nil without HTTP3

	recs   sync.Map // *tls.Conn → *ConnRecord
	starts sync.Map // *tls.Conn → *startConn, until its first request is read

	mu          sync.Mutex
	handshaking map[net.Conn]struct{} // closed by Close so it need not wait for timeouts
	work        chan net.Conn         // connections for an idle handshake worker
	workers     atomic.Int64          // handshake workers started (tests)

	wg        sync.WaitGroup // accept loop, handshakes, HTTP/3 watchers
	httpWG    inflight.Group // net/http's Serve, connection and handler goroutines
	closeOnce sync.Once
	done      chan struct{}
}

// Start listens on cfg.Addr and serves until Close. The returned server
// knows its actual address (Addr, UDPAddr), so tests can pass
// "127.0.0.1:0".
func Start(cfg Config) (*Server, error) {
	c, err := cfg.populate()
	if err != nil {
		return nil, err
	}
	certs, err := issueCerts(c.CA, c.PublicName, c.Names)
	if err != nil {
		return nil, err
	}
	ln, err := listenStream(c.Addr)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: c, certs: certs, log: &recordLog{w: c.Log}, ln: ln,
		ready: newConnQueue(ln.Addr()), done: make(chan struct{}), handshaking: map[net.Conn]struct{}{},
		work: make(chan net.Conn)}
	s.tlsCfg = tlsConfig(&s.cfg, certs, &s.known, []string{"h2", "http/1.1"})
	s.open = openKeys(c.Keys)
	if c.HTTP3 {
		if _, err = s.startHTTP3(ln.Addr().(*net.TCPAddr)); err != nil { // sets s.h3
			ln.Close()
			return nil, err
		}
	}
	s.http = &http.Server{
		Handler:           s.httpWG.Handler(timeout.Body(s.handler(), c.ReadTimeout)),
		ReadHeaderTimeout: c.ReadTimeout,
		IdleTimeout:       c.IdleTimeout,
		ConnContext:       s.connContext,
		ConnState:         s.httpWG.ConnState(s.connState),
		ErrorLog:          discardLogger(),
	}
	s.httpWG.Go(func() { s.http.Serve(s.ready) }) //nolint:errcheck // ends with Close
	s.wg.Add(1)
	go func() { defer s.wg.Done(); s.acceptLoop() }()
	return s, nil
}

// Addr returns the TCP address the server listens on, or "unix:PATH".
func (s *Server) Addr() string { return listenerAddr(s.ln) }

// UDPAddr returns the UDP address of the HTTP/3 listener, or "" without
// HTTP3.
func (s *Server) UDPAddr() string {
	if s.h3 == nil {
		return ""
	}
	return s.h3.addr.String()
}

// CA returns the CA that issued the server's certificates.
func (s *Server) CA() *pki.CA { return s.cfg.CA }

// PublicName returns the client-facing name.
func (s *Server) PublicName() string { return s.cfg.PublicName }

// Close stops the listeners, closes every connection and waits for the
// server's goroutines: handshakes, net/http's connection and handler
// goroutines, and the HTTP/3 side's.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.httpWG.Close()
		s.mu.Lock()
		close(s.done)
		for c := range s.handshaking {
			c.Close()
		}
		s.mu.Unlock()
		err = s.ln.Close()
		s.ready.Close()
		s.http.Close()
		if s.h3 != nil {
			s.h3.close()
		}
		s.wg.Wait()
		s.httpWG.Wait()
	})
	return err
}

// spawn runs f on a goroutine that Close waits for. Once Close has begun
// it runs nothing and reports false.
func (s *Server) spawn(f func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.done:
		return false
	default:
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
	return true
}

func (s *Server) acceptLoop() { acceptEach(s.ln, s.ServeConn) }

// ServeConn runs the TLS handshake and then HTTP on a connection accepted
// elsewhere (the split relay hands it the connections it cannot decrypt).
// It returns at once; the server owns c from now on.
func (s *Server) ServeConn(c net.Conn) {
	s.mu.Lock()
	select {
	case <-s.done:
		s.mu.Unlock()
		c.Close()
		return
	default:
	}
	s.handshaking[c] = struct{}{}
	s.mu.Unlock()
	select {
	case s.work <- c: // an idle worker takes it
		return
	default:
	}
	if !s.spawn(func() { s.handshakeWorker(c) }) {
		s.handshaken(c, nil) // Close has begun (and closed c)
	}
}

// handshakeWorkerIdle is how long a handshake worker waits for another
// connection before it ends.
var handshakeWorkerIdle = 10 * time.Second

// handshakeWorker runs the handshake of c, then of the connections
// ServeConn hands it while it waits, until it has waited
// handshakeWorkerIdle or Close. A TLS handshake needs a stack of tens of
// KiB, which a new goroutine grows step by step, copying it each time
// (bench/handshakes.sh: 2% of the CPU of a handshake without ECH); a
// worker keeps its grown stack for the next connection.
func (s *Server) handshakeWorker(c net.Conn) {
	s.workers.Add(1)
	idle := time.NewTimer(handshakeWorkerIdle)
	defer idle.Stop()
	for {
		s.handshaken(c, s.handshake(c))
		idle.Reset(handshakeWorkerIdle)
		select {
		case c = <-s.work:
		case <-idle.C:
			return
		case <-s.done:
			return
		}
	}
}

// handshaken hands tc (c after its handshake, nil when it failed) to
// net/http.
func (s *Server) handshaken(c net.Conn, tc *tls.Conn) {
	s.mu.Lock()
	delete(s.handshaking, c)
	s.mu.Unlock()
	if tc != nil {
		s.ready.push(tc)
	}
}

// handshake runs the TLS handshake on c, logs the connection, and returns
// the handshaken conn, or nil after closing it when the handshake failed.
func (s *Server) handshake(c net.Conn) *tls.Conn {
	start := s.cfg.Now()
	p := newPeekConn(s.fromFront(c), start)
	sc := &startConn{Conn: p}
	var oc *openConn
	if s.open != nil {
		oc = newOpenConn(p, s.open)
		sc.Conn = oc
	}
	tc := tls.Server(sc, s.tlsCfg)
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.HandshakeTimeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	rec := s.tcpRecord(p, oc.accepted(), tc, err)
	s.log.write(rec)
	if err != nil {
		tc.Close()
		return nil
	}
	s.recs.Store(tc, rec)
	s.starts.Store(tc, sc)
	sc.arm(s.cfg.IdleTimeout, s.cfg.ReadTimeout)
	return tc
}

// tcpRecord builds the record of a TCP handshake; opened is the
// ClientHelloOuter the server opened itself (openConn), if any.
func (s *Server) tcpRecord(p *peekConn, opened *ech.Opened, tc *tls.Conn, err error) *ConnRecord {
	rec := &ConnRecord{Schema: RecordSchema, Time: p.start.UTC(), Mode: s.cfg.Mode,
		Transport: TransportTCP, ClientAddr: p.RemoteAddr().String(), ECH: ECHNone}
	rec.HandshakeMS = float64(s.cfg.Now().Sub(p.start).Microseconds()) / 1000
	// Over TCP the record comes from the ClientHello's bytes as the client
	// sent them (the outer one with ECH); the callbacks' notes on p are
	// the QUIC side's (http3.go).
	d := p.hello()
	cs := tc.ConnectionState()
	rec.fill(cs)
	rec.OuterSNI = d.sni
	if opened != nil {
		rec.ECH, rec.InnerSNI = ECHAccepted, opened.Inner.ServerName
	}
	if d.hasECH {
		id := d.configID
		rec.ConfigID, rec.HPKESuite = &id, d.suite
		if rec.ECH != ECHAccepted {
			rec.ECH = ECHRejected
			if !s.known.has(d.configID) {
				rec.ECH = ECHGrease
			}
			rec.RetryConfigs = p.sentRetries(s.cfg.Keys) && cs.Version == tls.VersionTLS13
		}
	}
	if d.innerECH {
		// A ClientHelloInner came in the clear: its name was on the wire
		// unless a split front vouches that it opened the ClientHelloOuter
		// (applyFront).
		rec.ECH, rec.InnerSNI = ECHInnerInClear, ""
	}
	s.applyFront(rec, p.Conn, d)
	if err != nil {
		rec.Error = err.Error()
	}
	return rec
}

// retries reports whether the key source has retry configs to send.
func retries(src KeySource) bool {
	if src == nil {
		return false
	}
	ks, err := src.TLSKeys()
	if err != nil {
		return false
	}
	for _, k := range ks {
		if k.SendAsRetry {
			return true
		}
	}
	return false
}

func (s *Server) connContext(ctx context.Context, c net.Conn) context.Context {
	if v, ok := s.recs.Load(c); ok {
		ctx = withRecord(ctx, v.(*ConnRecord))
	}
	return ctx
}

// connState hands the read deadline back to net/http once a connection's
// first request (or HTTP/2 preface) is read, and forgets closed ones.
func (s *Server) connState(c net.Conn, st http.ConnState) {
	if st == http.StateNew {
		return
	}
	if sc, ok := s.starts.LoadAndDelete(c); ok {
		sc.(*startConn).activate()
	}
	if st == http.StateClosed || st == http.StateHijacked {
		s.recs.Delete(c)
	}
}
