package resolver

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/echlab/echlab/internal/timeout"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// DoH3Server is a running DoH listener over HTTP/3 (QUIC, ALPN h3).
type DoH3Server struct {
	srv  *http3.Server
	conn net.PacketConn
	done chan struct{}
}

// StartDoH3 listens on o.Addr (UDP) and serves DoH over HTTP/3 until
// Close. Requests reach the Handler with Meta.Transport doh3.
func StartDoH3(h Handler, o DoHOptions) (*DoH3Server, error) {
	conn, err := net.ListenPacket("udp", o.addr())
	if err != nil {
		return nil, fmt.Errorf("resolver: doh3: %w", err)
	}
	return serveDoH3(conn, h, o)
}

func serveDoH3(conn net.PacketConn, h Handler, o DoHOptions) (*DoH3Server, error) {
	conf, err := o.ServerConfig(http3.NextProtoH3)
	if err != nil {
		conn.Close()
		return nil, err
	}
	t := o.timeouts()
	s := &DoH3Server{
		srv: &http3.Server{
			Handler:     timeout.Body(newDoHHandler(h, o.DoHHandlerOptions), t.Read),
			TLSConfig:   conf,
			IdleTimeout: t.Idle,
			QUICConfig:  &quic.Config{MaxIdleTimeout: t.Idle + 5*time.Second}, // the HTTP/3 layer closes at t.Idle, explicitly
		},
		conn: conn,
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		s.srv.Serve(conn)
	}()
	return s, nil
}

// Addr returns the UDP address the server listens on.
func (s *DoH3Server) Addr() net.Addr { return s.conn.LocalAddr() }

// URL returns the server's URL for NewClient, h3://ADDR/dns-query.
func (s *DoH3Server) URL() string { return "h3://" + s.conn.LocalAddr().String() + DoHPath }

// AltSvc returns the Alt-Svc value that advertises this server,
// h3=":PORT".
func (s *DoH3Server) AltSvc() string { return altSvcH3(s.conn.LocalAddr()) }

// Close stops the server and closes its socket.
func (s *DoH3Server) Close() error {
	err := s.srv.Close()
	s.conn.Close()
	<-s.done
	return err
}

// Shutdown stops the server gracefully, waiting for requests in flight.
func (s *DoH3Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	s.conn.Close()
	return err
}

// altSvcH3 returns the Alt-Svc header value, h3=":PORT", that advertises
// HTTP/3 on the port of addr.
func altSvcH3(addr net.Addr) string {
	ap, err := netip.ParseAddrPort(addr.String())
	if err != nil {
		return ""
	}
	return `h3=":` + strconv.Itoa(int(ap.Port())) + `"`
}

// startDoHWithH3 starts DoH over HTTP/1.1 and HTTP/2 (TCP) and over
// HTTP/3 (UDP) on the same port, the TCP side advertising the UDP side in
// Alt-Svc, as a web server does. With port 0 it picks a port free on both.
func startDoHWithH3(h Handler, o DoHOptions) (*DoHServer, *DoH3Server, error) {
	host, port, err := net.SplitHostPort(o.addr())
	if err != nil {
		return nil, nil, fmt.Errorf("resolver: doh: %w", err)
	}
	tries := 1
	if port == "0" {
		tries = 10
	}
	for i := 0; ; i++ {
		conn, err := net.ListenPacket("udp", net.JoinHostPort(host, port))
		if err != nil {
			return nil, nil, fmt.Errorf("resolver: doh3: %w", err)
		}
		tcpAddr := net.JoinHostPort(host, strconv.Itoa(conn.LocalAddr().(*net.UDPAddr).Port))
		ln, err := net.Listen("tcp", tcpAddr)
		if err != nil {
			conn.Close()
			if i+1 < tries {
				continue
			}
			return nil, nil, fmt.Errorf("resolver: doh: %w", err)
		}
		o.AltSvc = altSvcH3(conn.LocalAddr())
		h3, err := serveDoH3(conn, h, o)
		if err != nil {
			ln.Close()
			return nil, nil, err
		}
		h12, err := serveDoH(ln, h, o)
		if err != nil {
			h3.Close()
			return nil, nil, err
		}
		return h12, h3, nil
	}
}
