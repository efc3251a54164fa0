package resolver

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/miekg/dns"
	"github.com/quic-go/quic-go"
)

// quicClient is DoQ (RFC 9250): one QUIC connection (ALPN doq) kept and
// reused, one bidirectional stream per query, ID 0, STREAM FIN after the
// query.
type quicClient struct {
	ep *endpoint

	mu   sync.Mutex
	conn *quic.Conn
}

func newQUICClient(ep *endpoint) *quicClient { return &quicClient{ep: ep} }

func (c *quicClient) Address() string { return c.ep.Address() }

// Close closes the connection with DOQ_NO_ERROR.
func (c *quicClient) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil {
		return nil
	}
	err := c.conn.CloseWithError(DoQNoError, "")
	c.conn = nil
	return err
}

func (c *quicClient) Exchange(ctx context.Context, m *dns.Msg) (*dns.Msg, error) {
	resp, _, err := c.exchangeTimed(ctx, m)
	return resp, err
}

func (c *quicClient) exchangeTimed(ctx context.Context, m *dns.Msg) (*dns.Msg, Timing, error) {
	ctx, cancel := c.ep.deadline(ctx)
	defer cancel()
	q, err := c.ep.query(m, true, 0)
	if err != nil {
		return nil, Timing{Protocol: "doq"}, err
	}
	removeKeepalive(q) // DoQ forbids edns-tcp-keepalive (RFC 9250 §5.5.2)
	wire, err := packDoQ(q)
	if err != nil {
		return nil, Timing{Protocol: "doq"}, err
	}
	resp, tm, err := c.try(ctx, wire)
	if err != nil && tm.Reused && ctx.Err() == nil {
		// The server may have closed an idle connection: dial afresh.
		c.drop()
		resp, tm, err = c.try(ctx, wire)
	}
	if err != nil {
		return nil, tm, err
	}
	resp.Id = m.Id
	return resp, tm, nil
}

// try sends one query on a stream of the current (or a new) connection.
func (c *quicClient) try(ctx context.Context, wire []byte) (*dns.Msg, Timing, error) {
	tm := Timing{Protocol: "doq", QuerySize: len(wire) - 2}
	conn, err := c.connect(ctx, &tm)
	if err != nil {
		return nil, tm, err
	}
	start := time.Now()
	str, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, tm, err
	}
	stop := context.AfterFunc(ctx, func() {
		str.CancelRead(DoQRequestCancelled)
		str.CancelWrite(DoQRequestCancelled)
	})
	defer stop()
	if _, err := str.Write(wire); err != nil {
		return nil, tm, err
	}
	str.Close() // STREAM FIN: the query is complete
	b, err := io.ReadAll(io.LimitReader(str, 2+maxMessage+1))
	if err != nil {
		if ctx.Err() != nil {
			return nil, tm, ctx.Err()
		}
		return nil, tm, err
	}
	resp, err := parseDoQMessage(b)
	if err != nil {
		conn.CloseWithError(DoQProtocolError, err.Error())
		return nil, tm, err
	}
	tm.RTT, tm.ReplySize = time.Since(start), int(binary.BigEndian.Uint16(b))
	return resp, tm, nil
}

// connect returns the live connection or dials a new one.
func (c *quicClient) connect(ctx context.Context, tm *Timing) (*quic.Conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil && c.conn.Context().Err() == nil {
		tm.Reused = true
		tm.ECHAccepted = c.conn.ConnectionState().TLS.ECHAccepted
		return c.conn, nil
	}
	start := time.Now()
	conf := &quic.Config{HandshakeIdleTimeout: c.ep.opts.Timeout, MaxIdleTimeout: 30 * time.Second}
	conn, err := quic.DialAddr(ctx, c.ep.addr, c.ep.tlsConfig(alpnDoQ), conf)
	if err != nil {
		return nil, err
	}
	tm.Handshake = time.Since(start)
	tm.ECHAccepted = conn.ConnectionState().TLS.ECHAccepted
	c.conn = conn
	return conn, nil
}

// drop forgets the current connection, closing it.
func (c *quicClient) drop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil {
		c.conn.CloseWithError(DoQNoError, "")
		c.conn = nil
	}
}

// DoQErrorCode returns the DoQ application error code that closed a
// connection or reset a stream, if err carries one.
func DoQErrorCode(err error) (code uint64, ok bool) {
	var ae *quic.ApplicationError
	if errors.As(err, &ae) {
		return uint64(ae.ErrorCode), true
	}
	var se *quic.StreamError
	if errors.As(err, &se) {
		return uint64(se.ErrorCode), true
	}
	return 0, false
}
