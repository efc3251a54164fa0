package server

import (
	"context"
	"net"
	"sync"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// h3Server is the HTTP/3 side of a Server: a quic-go transport on UDP
// whose tls.Config carries the same ECH keys as the TCP side (Go's
// crypto/tls does ECH inside QUIC too).
//
// Over QUIC the server cannot record the raw ClientHello (quic-go owns the
// CRYPTO frames), so its ConnRecords come from the tls.Config callbacks and
// the ConnectionState: the outer SNI (GetEncryptedClientHelloKeys sees the
// outer ClientHelloInfo), the inner SNI and ECH acceptance are known, but
// the config id and HPKE suite are not, and an ECH that was not accepted is
// reported as "rejected" even when it was GREASE. Failed handshakes are
// logged when quic-go gives up on the connection, with its reason.
type h3Server struct {
	addr *net.UDPAddr
	udp  *net.UDPConn
	tr   *quic.Transport
	srv  *http3.Server
	recs sync.Map // *quic.Conn → *ConnRecord
	done chan struct{}
}

func (s *Server) startHTTP3(tcp *net.TCPAddr) (*h3Server, error) {
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: tcp.IP, Port: tcp.Port})
	if err != nil {
		// The TCP port number is taken on UDP: take any free one; Alt-Svc
		// names the real port.
		if udp, err = net.ListenUDP("udp", &net.UDPAddr{IP: tcp.IP}); err != nil {
			return nil, err
		}
	}
	h := &h3Server{addr: udp.LocalAddr().(*net.UDPAddr), udp: udp, done: make(chan struct{})}
	h.tr = &quic.Transport{Conn: udp, ConnContext: func(ctx context.Context, ci *quic.ClientInfo) (context.Context, error) {
		p := &peekConn{start: s.cfg.Now()}
		go s.logFailedQUIC(ctx, p, ci.RemoteAddr)
		return withObservation(ctx, p), nil
	}}
	tlsCfg := http3.ConfigureTLSConfig(tlsConfig(&s.cfg, s.certs, &s.known, nil))
	tlsCfg.MinVersion = 0 // quic-go sets TLS 1.3 itself
	ln, err := h.tr.Listen(tlsCfg, &quic.Config{})
	if err != nil {
		udp.Close()
		return nil, err
	}
	h.srv = &http3.Server{
		Handler: s.handler(),
		ConnContext: func(ctx context.Context, c *quic.Conn) context.Context {
			if v, ok := h.recs.Load(c); ok {
				ctx = withRecord(ctx, v.(*ConnRecord))
			}
			return ctx
		},
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		h.srv.ServeListener(&loggingListener{Listener: ln, s: s, h: h}) //nolint:errcheck // ends with close
	}()
	return h, nil
}

func (h *h3Server) close() {
	h.srv.Close()
	h.tr.Close()
	h.udp.Close()
}

// loggingListener logs each QUIC connection once its handshake is done
// and keeps its record for the pages.
type loggingListener struct {
	*quic.Listener
	s *Server
	h *h3Server
}

// Accept returns the next handshaken connection, logged.
func (l *loggingListener) Accept(ctx context.Context) (*quic.Conn, error) {
	c, err := l.Listener.Accept(ctx)
	if err != nil {
		return nil, err
	}
	rec := l.s.quicRecord(c)
	if p, _ := c.Context().Value(obsKey{}).(*peekConn); p != nil {
		p.mu.Lock()
		p.logged = true
		p.mu.Unlock()
	}
	l.s.log.write(rec)
	l.h.recs.Store(c, rec)
	go func() {
		<-c.Context().Done()
		l.h.recs.Delete(c)
	}()
	return c, nil
}

func (s *Server) quicRecord(c *quic.Conn) *ConnRecord {
	p, _ := c.Context().Value(obsKey{}).(*peekConn)
	if p == nil {
		p = &peekConn{start: s.cfg.Now()}
	}
	rec := &ConnRecord{Schema: RecordSchema, Time: p.start.UTC(), Mode: s.cfg.Mode,
		Transport: TransportQUIC, ClientAddr: c.RemoteAddr().String(), ECH: ECHNone}
	rec.HandshakeMS = float64(s.cfg.Now().Sub(p.start).Microseconds()) / 1000
	cs := c.ConnectionState().TLS
	rec.fill(cs)
	p.mu.Lock()
	defer p.mu.Unlock()
	rec.OuterSNI = p.helloSNI
	if p.sawECH {
		rec.OuterSNI = p.outerSNI
		if !cs.ECHAccepted {
			rec.ECH = ECHRejected
			rec.RetryConfigs = retries(s.cfg.Keys)
		}
	}
	return rec
}

// logFailedQUIC waits for the end of a QUIC connection attempt (quic-go
// cancels ctx when the connection closes or its handshake fails) and logs
// it if it never reached Accept.
func (s *Server) logFailedQUIC(ctx context.Context, p *peekConn, remote net.Addr) {
	<-ctx.Done()
	select {
	case <-s.done:
		return
	default:
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.logged {
		return
	}
	rec := &ConnRecord{Schema: RecordSchema, Time: p.start.UTC(), Mode: s.cfg.Mode, Transport: TransportQUIC,
		ClientAddr: remote.String(), ECH: ECHNone, OuterSNI: p.helloSNI}
	rec.HandshakeMS = float64(s.cfg.Now().Sub(p.start).Microseconds()) / 1000
	if p.sawECH {
		rec.OuterSNI, rec.ECH, rec.RetryConfigs = p.outerSNI, ECHRejected, retries(s.cfg.Keys)
	}
	rec.Error = "quic handshake failed"
	if err := context.Cause(ctx); err != nil {
		rec.Error = err.Error()
	}
	s.log.write(rec)
}
