package server

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/echlab/echlab/internal/timeout"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/quic-go/quic-go/qlog"
	"github.com/quic-go/quic-go/qlogwriter"
)

// h3Server is the HTTP/3 side of a Server: a quic-go transport on UDP
// whose tls.Config carries the same ECH keys as the TCP side (Go's
// crypto/tls does ECH inside QUIC too).
//
// quic-go owns the CRYPTO frames, so the ClientHello's bytes are read from
// the client's Initial packets as the socket receives them (quic_hello.go):
// a QUIC record has the outer SNI, config id and HPKE suite a TCP one has,
// and tells GREASE (a config id the server never held) from a rejected
// ECH. Whether ECH was accepted comes from the ConnectionState. Failed
// handshakes are logged when quic-go gives up on the connection, with its
// reason, and with the ECH status that the callbacks prove (see quicECH):
// "accepted" when the server had swapped in the ClientHelloInner,
// "rejected" (or "grease") when it had sent retry configs, "unknown"
// otherwise.
type h3Server struct {
	addr *net.UDPAddr
	udp  *net.UDPConn
	tr   *quic.Transport
	srv  *http3.Server
	recs sync.Map // *quic.Conn → *ConnRecord
	// hellos are the ClientHellos read from client Initials, until their
	// connection takes them.
	hellos *quicHellos
	done   chan struct{}
}

// startHTTP3 starts the HTTP/3 side on tcp's address (or any free UDP
// port) and sets s.h3.
func (s *Server) startHTTP3(tcp *net.TCPAddr) (*h3Server, error) {
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: tcp.IP, Port: tcp.Port})
	if err != nil {
		// The TCP port number is taken on UDP: take any free one; Alt-Svc
		// names the real port.
		if udp, err = net.ListenUDP("udp", &net.UDPAddr{IP: tcp.IP}); err != nil {
			return nil, err
		}
	}
	h := &h3Server{addr: udp.LocalAddr().(*net.UDPAddr), udp: udp, done: make(chan struct{}),
		hellos: newQUICHellos(s.cfg.HandshakeTimeout, s.cfg.Now)}
	h.tr = &quic.Transport{Conn: newHelloUDPConn(udp, h.hellos), ConnContext: func(ctx context.Context, ci *quic.ClientInfo) (context.Context, error) {
		p := &peekConn{start: s.cfg.Now()}
		o := &quicECH{accepted: make(chan struct{}), key: helloKey{from: udpFrom(ci.RemoteAddr)}}
		if !s.spawn(func() { s.logFailedQUIC(ctx, p, o, h.hellos, ci.RemoteAddr) }) {
			return nil, errClosing
		}
		return context.WithValue(withObservation(ctx, p), quicECHKey{}, o), nil
	}}
	tlsCfg := http3.ConfigureTLSConfig(tlsConfig(&s.cfg, s.certs, &s.known, nil))
	tlsCfg.MinVersion = 0 // quic-go sets TLS 1.3 itself
	watchQUIC(tlsCfg, h.hellos)
	ln, err := h.tr.Listen(tlsCfg, &quic.Config{MaxIdleTimeout: s.cfg.IdleTimeout + quicIdleGrace, Tracer: dcidTracer})
	if err != nil {
		udp.Close()
		return nil, err
	}
	h.srv = &http3.Server{
		Handler:     timeout.Body(s.handler(), s.cfg.ReadTimeout),
		IdleTimeout: s.cfg.IdleTimeout,
		ConnContext: func(ctx context.Context, c *quic.Conn) context.Context {
			if v, ok := h.recs.Load(c); ok {
				ctx = withRecord(ctx, v.(*ConnRecord))
			}
			return ctx
		},
	}
	// s.h3 is set before the first request can be served: the handlers
	// read it (Alt-Svc), and a UDP datagram is no happens-before edge.
	s.h3 = h
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		h.srv.ServeListener(&loggingListener{Listener: ln, s: s, h: h}) //nolint:errcheck // ends with close
	}()
	return h, nil
}

// qlogTracer writes a qlog trace of each QUIC connection into the folder
// named by the QLOGDIR environment variable, quic-go's convention, as
// ODCID_server.sqlog; without QLOGDIR it traces nothing. A folder that
// cannot be created means no trace rather than quic-go's log.Fatal.
func qlogTracer(ctx context.Context, isClient bool, id quic.ConnectionID) qlogwriter.Trace {
	dir := os.Getenv("QLOGDIR")
	if dir == "" || os.MkdirAll(dir, 0o755) != nil {
		return nil
	}
	return qlog.DefaultConnectionTracer(ctx, isClient, id)
}

// dcidTracer notes the connection's original Destination Connection ID,
// which its ClientHello was read under (quicHellos), on the quicECH of its
// context, then traces it as qlogTracer does. quic-go calls it once per
// connection, after ConnContext and before the connection runs.
func dcidTracer(ctx context.Context, isClient bool, id quic.ConnectionID) qlogwriter.Trace {
	if o, _ := ctx.Value(quicECHKey{}).(*quicECH); o != nil {
		o.mu.Lock()
		o.key.dcid = string(id.Bytes())
		o.mu.Unlock()
	}
	return qlogTracer(ctx, isClient, id)
}

// quicAcceptWait bounds how long a connection that closed after its
// handshake waits for Accept to log it before it is logged as failed.
const quicAcceptWait = 5 * time.Second

// errClosing refuses a QUIC connection that arrives while the server
// closes.
var errClosing = errors.New("server: closing")

// close stops HTTP/3; http3.Server.Close waits for its handlers, and
// closing the transport ends every connection, so that the goroutines
// the server started for them (logFailedQUIC, the record cleanup) return.
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
	if o, _ := c.Context().Value(quicECHKey{}).(*quicECH); o != nil {
		l.h.hellos.forget(o.connKey())
		close(o.accepted)
	}
	l.s.log.write(rec)
	l.h.recs.Store(c, rec)
	if !l.s.spawn(func() {
		<-c.Context().Done()
		l.h.recs.Delete(c)
	}) {
		l.h.recs.Delete(c) // closing: h3.close ends c
	}
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
	o, _ := c.Context().Value(quicECHKey{}).(*quicECH)
	p.mu.Lock()
	defer p.mu.Unlock()
	rec.OuterSNI = p.helloSNI
	if p.sawECH {
		rec.OuterSNI = p.outerSNI
		if !cs.ECHAccepted {
			// The handshake completed without ECH: crypto/tls sent retry
			// configs if the key set had any.
			rec.ECH = ECHRejected
			rec.RetryConfigs = retries(s.cfg.Keys)
			if o != nil {
				_, rec.RetryConfigs = o.status()
			}
		}
	}
	s.withHelloFacts(rec, p.facts)
	return rec
}

// withHelloFacts completes a QUIC record with what its ClientHello, read
// from the client's Initials, says (nil f: it was not read, and the record
// keeps what the callbacks proved): the outer SNI as sent, the config id
// and HPKE suite, and a config id the server never held makes an ECH that
// was not accepted "grease", as over TCP (Server.tcpRecord).
func (s *Server) withHelloFacts(rec *ConnRecord, f *helloFacts) {
	if f == nil {
		return
	}
	rec.OuterSNI = f.sni
	if f.innerECH {
		// No split front stands before the QUIC side to vouch for it.
		rec.ECH, rec.InnerSNI = ECHInnerInClear, ""
		return
	}
	if !f.hasECH {
		return
	}
	id := f.configID
	rec.ConfigID, rec.HPKESuite = &id, f.suite
	switch rec.ECH {
	case ECHNone:
		// crypto/tls never asked for keys: the server has none (it
		// ignores the extension, as a server without ECH does), or the
		// handshake failed before.
		rec.ECH = ECHUnknown
		if s.cfg.Keys == nil {
			rec.ECH = ECHGrease
		}
	case ECHRejected:
		if !s.known.has(id) {
			rec.ECH = ECHGrease
		}
	}
}

// logFailedQUIC waits for the end of a QUIC connection attempt (quic-go
// cancels ctx when the connection closes or its handshake fails) and logs
// it if it never reached Accept.
func (s *Server) logFailedQUIC(ctx context.Context, p *peekConn, o *quicECH, hellos *quicHellos, remote net.Addr) {
	<-ctx.Done()
	var ae *quic.ApplicationError
	if errors.As(context.Cause(ctx), &ae) {
		// An application close travels in 1-RTT packets only (RFC 9000
		// §10.2.3): the handshake completed, and quic-go hands such a
		// connection to Accept, which logs it, even when it closed first
		// (a client that opened connections in parallel and dropped one).
		select {
		case <-o.accepted:
		case <-s.done:
		case <-time.After(quicAcceptWait):
		}
	}
	o.attach(p, hellos) // a handshake that failed before the callbacks
	hellos.forget(o.connKey())
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
		rec.OuterSNI = p.outerSNI
		rec.ECH, rec.RetryConfigs = o.status()
		if rec.ECH == ECHAccepted {
			rec.InnerSNI = p.helloSNI
		}
	}
	s.withHelloFacts(rec, p.facts)
	rec.Error = "quic handshake failed"
	if err := context.Cause(ctx); err != nil {
		rec.Error = err.Error()
	}
	s.log.write(rec)
}

// quicECHKey carries a *quicECH through the QUIC connection context.
type quicECHKey struct{}

// quicECH is what the tls.Config callbacks prove about ECH on one QUIC
// handshake, for the record of a handshake that fails before quic-go
// hands over a ConnectionState. crypto/tls gives no ECH verdict to the
// server's callbacks, so it is read from the order and arguments of the
// calls it makes:
//
//  1. GetEncryptedClientHelloKeys with the ClientHelloOuter, before
//     decrypting (only when the ClientHello has an ECH extension);
//  2. GetConfigForClient with the ClientHello it goes on with: the inner
//     one when it decrypted, else the very same outer message, whose
//     Extensions slice is then shared with call 1;
//  3. GetEncryptedClientHelloKeys again while writing EncryptedExtensions
//     (TLS 1.3 only), which carry retry configs when ECH was offered, not
//     accepted, and a returned key has SendAsRetry.
//
// Call 2 comparing slice identity is the only signal crypto/tls (Go 1.26)
// gives; a future crypto/tls that copied the message would read as
// "accepted" here, which TestHTTP3ECHStatusOfFailedHandshakes catches.
type quicECH struct {
	mu        sync.Mutex
	outerExt  *uint16 // &Extensions[0] of the ClientHelloOuter (call 1)
	decided   bool    // call 2 happened after call 1
	opened    bool    // call 2 saw another ClientHello: the inner one
	retrySent bool    // call 3 returned retry configs for a rejected ECH

	accepted chan struct{} // closed once Accept logged the connection
	key      helloKey      // the client's address (ConnContext) and original DCID (dcidTracer)
	attached bool          // its ClientHello's facts were looked for (attach)
}

// connKey returns the key its ClientHello was read under.
func (o *quicECH) connKey() helloKey {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.key
}

// attach hands p the facts of the connection's ClientHello, read from its
// Initials, the first time it is called: p.setFacts, as over TCP when the
// server parsed the ClientHello itself. Without them (the hello was not
// read whole, or the table was full), p keeps what the callbacks note.
func (o *quicECH) attach(p *peekConn, hellos *quicHellos) {
	o.mu.Lock()
	key, done := o.key, o.attached
	o.attached = true
	o.mu.Unlock()
	if done || key.dcid == "" || p == nil || hellos == nil {
		return
	}
	if f, ok := hellos.take(key); ok {
		p.setFacts(f)
	}
}

// status is the ECH status and retry_configs flag of a failed handshake
// whose ClientHello had an ECH extension.
func (o *quicECH) status() (ech string, retry bool) {
	if o == nil {
		return ECHUnknown, false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case o.decided && o.opened:
		return ECHAccepted, false
	case o.retrySent:
		return ECHRejected, true
	}
	return ECHUnknown, false
}

func (o *quicECH) noteKeys(info *tls.ClientHelloInfo, ks []tls.EncryptedClientHelloKey) {
	if !slices.Contains(info.Extensions, extECH) {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case o.outerExt == nil && !o.decided:
		o.outerExt = &info.Extensions[0]
	case o.decided && !o.opened && slices.ContainsFunc(ks, func(k tls.EncryptedClientHelloKey) bool { return k.SendAsRetry }):
		o.retrySent = true
	}
}

func (o *quicECH) noteHello(info *tls.ClientHelloInfo) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.outerExt == nil || o.decided {
		return
	}
	o.decided = true
	o.opened = len(info.Extensions) == 0 || &info.Extensions[0] != o.outerExt
}

// watchQUIC wraps cfg's callbacks so that they first hand the
// connection's peekConn its ClientHello's facts (read from its Initials:
// GetEncryptedClientHelloKeys then puts the key of the config id it names
// first, as over TCP), and then feed the quicECH in the connection context.
func watchQUIC(cfg *tls.Config, hellos *quicHellos) {
	keys, forClient := cfg.GetEncryptedClientHelloKeys, cfg.GetConfigForClient
	attach := func(info *tls.ClientHelloInfo) *quicECH {
		o := quicECHOf(info)
		if o != nil {
			o.attach(observation(info), hellos)
		}
		return o
	}
	if keys != nil {
		cfg.GetEncryptedClientHelloKeys = func(info *tls.ClientHelloInfo) ([]tls.EncryptedClientHelloKey, error) {
			o := attach(info)
			ks, err := keys(info)
			if o != nil && err == nil {
				o.noteKeys(info, ks)
			}
			return ks, err
		}
	}
	cfg.GetConfigForClient = func(info *tls.ClientHelloInfo) (*tls.Config, error) {
		if o := attach(info); o != nil && keys != nil {
			o.noteHello(info)
		}
		if forClient == nil {
			return nil, nil
		}
		return forClient(info)
	}
}

func quicECHOf(info *tls.ClientHelloInfo) *quicECH {
	if ctx := info.Context(); ctx != nil {
		o, _ := ctx.Value(quicECHKey{}).(*quicECH)
		return o
	}
	return nil
}
