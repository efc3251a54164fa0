package client

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/quic-go/quic-go/qlog"
	"github.com/quic-go/quic-go/qlogwriter"
)

// fetchQUIC runs the QUIC handshake (TLS inside it, ECH included) and sends
// the request over HTTP/3. ConnectTime is only the UDP socket set-up: QUIC
// has no connect apart from its handshake, which HandshakeTime measures.
func (f *fetcher) fetchQUIC(ctx context.Context, conf *tls.Config) error {
	t0 := time.Now()
	udp, err := net.ListenUDP("udp", nil)
	f.res.ConnectTime = time.Since(t0)
	if err != nil {
		return classify("connect", ClassConnect, err)
	}
	var pc net.PacketConn = udp
	if f.opts.OnClientHello != nil {
		hc := newHelloPacketConn(udp, f.opts.OnClientHello)
		defer hc.close() // runs last: no report after Fetch returns
		pc = hc
	}
	tr := &quic.Transport{Conn: pc}
	defer udp.Close()
	defer tr.Close()
	conn, err := f.dialQUIC(ctx, tr, conf)
	if err != nil {
		return err
	}
	defer conn.CloseWithError(0, "")
	f.recordState(conn.ConnectionState().TLS)
	f.res.RemoteAddr = addrString(conn.RemoteAddr())
	h3 := &http3.Transport{DisableCompression: true}
	return f.doRequest(ctx, h3.NewClientConn(conn))
}

// dialQUIC tries each address with HandshakeTimeout each.
func (f *fetcher) dialQUIC(ctx context.Context, tr *quic.Transport, conf *tls.Config) (*quic.Conn, error) {
	qconf := &quic.Config{HandshakeIdleTimeout: f.opts.HandshakeTimeout, Tracer: qlogTracer}
	var errs []error
	for _, ap := range f.addrs {
		hctx, cancel := context.WithTimeout(ctx, f.opts.HandshakeTimeout)
		t0 := time.Now()
		conn, err := tr.Dial(hctx, net.UDPAddrFromAddrPort(ap), conf, qconf)
		f.res.HandshakeTime = time.Since(t0)
		cancel()
		if err == nil {
			return conn, nil
		}
		if _, ok := isRejection(err); ok {
			return nil, err // the server answered: do not try other addresses
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, classify("handshake", ClassHandshake, errors.Join(errs...))
}

// qlogTracer writes a qlog trace of each QUIC connection (packets, their
// frames, loss and PTO timers) into the folder named by the QLOGDIR
// environment variable, quic-go's convention, as
// ODCID_client.sqlog; without QLOGDIR it traces nothing. A folder that
// cannot be created means no trace rather than quic-go's log.Fatal.
func qlogTracer(ctx context.Context, isClient bool, id quic.ConnectionID) qlogwriter.Trace {
	dir := os.Getenv("QLOGDIR")
	if dir == "" || os.MkdirAll(dir, 0o755) != nil {
		return nil
	}
	return qlog.DefaultConnectionTracer(ctx, isClient, id)
}
