package resolver

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/echlab/echlab/internal/inflight"
	"github.com/echlab/echlab/internal/timeout"
)

// DoHOptions configures StartDoH and StartDoH3. The zero value listens on
// 127.0.0.1 on a free port, but a certificate is required.
type DoHOptions struct {
	TLSListenerOptions
	DoHHandlerOptions
	// HTTP1Only offers only http/1.1 in ALPN (no HTTP/2).
	HTTP1Only bool
	// NetHTTP2 serves HTTP/2 with net/http's server instead of the
	// resolver's own (doh_h2.go: x/net/http2's Framer and hpack, worker
	// goroutines kept per connection, one write and flush per batch of
	// responses), which answers the same requests the same way for about a
	// third of the CPU. It is there to compare the two.
	NetHTTP2 bool
	// NetHTTP1 serves HTTP/1.1 with net/http's server instead of the
	// resolver's own (doh_h1.go: net/http's request parser, the same
	// handler, responses written into one buffer flushed only when the
	// connection waits for more requests, so pipelined requests are
	// answered in one write). It is there to compare the two.
	NetHTTP1 bool
	// ErrorLog receives the HTTP server's errors (TLS handshake failures
	// and the like); nil discards them.
	ErrorLog *log.Logger
	// Timeouts: Idle (default 60 s) closes a connection
	// with no request in progress (HTTP/2, HTTP/3: no stream); Read
	// (default 10 s) bounds a request's headers, from the
	// TLS handshake or, between requests, from their first byte, and
	// then its body. A request too slow is cut off and its connection
	// closed (HTTP/2 and HTTP/3 reset the stream).
	Timeouts Timeouts
}

// defaultDoHIdleTimeout is how long a DoH connection may stay idle by
// default.
const defaultDoHIdleTimeout = 60 * time.Second

// timeouts are o.Timeouts with the defaults filled in.
func (o DoHOptions) timeouts() Timeouts {
	return o.Timeouts.or(defaultDoHIdleTimeout, defaultReadTimeout)
}

// DoHServer is a running DoH listener over HTTP/1.1 and HTTP/2.
type DoHServer struct {
	srv *http.Server
	ln  *dohListener    // TLS handshakes; routes HTTP/1.1 to h1, the rest to srv
	g   *inflight.Group // Serve, each connection and each request
	h1  *h1Server       // nil with NetHTTP1
	h2  *h2Server       // nil with HTTP1Only or NetHTTP2
}

// StartDoH listens on o.Addr (TCP) and serves DoH with TLS until Close.
func StartDoH(h Handler, o DoHOptions) (*DoHServer, error) {
	ln, err := net.Listen("tcp", o.addr())
	if err != nil {
		return nil, fmt.Errorf("resolver: doh: %w", err)
	}
	return serveDoH(ln, h, o)
}

func serveDoH(ln net.Listener, h Handler, o DoHOptions) (*DoHServer, error) {
	alpn := []string{"h2", "http/1.1"}
	if o.HTTP1Only {
		alpn = alpn[1:]
	}
	conf, err := o.ServerConfig(alpn...)
	if err != nil {
		ln.Close()
		return nil, err
	}
	if o.ErrorLog == nil {
		o.ErrorLog = log.New(io.Discard, "", 0)
	}
	t := o.timeouts()
	g := &inflight.Group{}
	handler := g.Handler(timeout.Body(newDoHHandler(h, o.DoHHandlerOptions), t.Read))
	srv := &http.Server{
		Handler:           handler,
		ConnState:         g.ConnState(nil),
		TLSConfig:         conf,
		ReadHeaderTimeout: t.Read,
		IdleTimeout:       t.Idle,
		ErrorLog:          o.ErrorLog,
		Protocols:         new(http.Protocols),
	}
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetHTTP2(!o.HTTP1Only)
	var h2 *h2Server
	if !o.HTTP1Only && !o.NetHTTP2 {
		// net/http hands each connection that negotiated h2 to our
		// server (after the TLS handshake, counted by ConnState) and
		// keeps its own HTTP/2 server out.
		h2 = newH2Server(handler, t, o.ErrorLog)
		srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){
			"h2": func(_ *http.Server, c *tls.Conn, _ http.Handler) { h2.serveConn(c) },
		}
		srv.RegisterOnShutdown(h2.startShutdown)
	}
	var h1 *h1Server
	if !o.NetHTTP1 {
		h1 = newH1Server(handler, t, o.ErrorLog)
	}
	dl := newDoHListener(ln, conf, t.Read, h1, o.ErrorLog, g)
	g.Go(func() { srv.Serve(dl) }) //nolint:errcheck // ends with Close
	return &DoHServer{srv: srv, ln: dl, g: g, h1: h1, h2: h2}, nil
}

// Addr returns the TCP address the server listens on.
func (s *DoHServer) Addr() net.Addr { return s.ln.Addr() }

// URL returns the server's DoH URL, https://ADDR/dns-query.
func (s *DoHServer) URL() string { return "https://" + s.ln.Addr().String() + DoHPath }

// Close stops the server, closes its connections (which cancels the
// context of the requests in flight) and waits for its goroutines: Serve,
// each connection's and each request's.
func (s *DoHServer) Close() error {
	s.g.Close()
	err := s.srv.Close()
	s.ln.Close() // if Serve had not started yet
	if s.h1 != nil {
		s.h1.close()
	}
	s.g.Wait()
	return err
}

// Shutdown stops the server gracefully, waiting for requests in flight
// and then for its goroutines. If ctx ends first, it closes the
// connections left as Close does and returns ctx's error.
func (s *DoHServer) Shutdown(ctx context.Context) error {
	if s.h1 != nil {
		s.h1.startShutdown()
	}
	err := s.srv.Shutdown(ctx)
	s.ln.Close()
	if err != nil {
		s.srv.Close()
	}
	if s.h1 != nil {
		if werr := s.h1.wait(ctx); err == nil {
			err = werr
		}
	}
	s.g.Close()
	s.g.Wait()
	return err
}
