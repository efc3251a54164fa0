package resolver

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// streamClient is Do53 over TCP and, with a TLS dialer, DoT: one
// connection kept open and reused, one query at a time on it, redialled
// once when a reused connection turns out to be dead.
type streamClient struct {
	ep        *endpoint
	protocol  string
	encrypted bool
	dial      func(ctx context.Context, tm *Timing) (net.Conn, error)

	mu   sync.Mutex
	conn net.Conn
}

func newTCPClient(ep *endpoint) *streamClient {
	c := &streamClient{ep: ep, protocol: "tcp"}
	c.dial = c.dialTCP
	return c
}

func (c *streamClient) dialTCP(ctx context.Context, tm *Timing) (net.Conn, error) {
	start := time.Now()
	conn, err := c.ep.opts.Dialer.DialContext(ctx, "tcp", c.ep.addr)
	tm.Connect = time.Since(start)
	return conn, err
}

func (c *streamClient) Address() string { return c.ep.Address() }

func (c *streamClient) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeConn()
}

func (c *streamClient) closeConn() error {
	if c.conn == nil {
		return nil
	}
	err := c.conn.Close()
	c.conn = nil
	return err
}

func (c *streamClient) Exchange(ctx context.Context, m *dns.Msg) (*dns.Msg, error) {
	resp, _, err := c.exchangeTimed(ctx, m)
	return resp, err
}

func (c *streamClient) exchangeTimed(ctx context.Context, m *dns.Msg) (*dns.Msg, Timing, error) {
	tm := Timing{Protocol: c.protocol}
	ctx, cancel := c.ep.deadline(ctx)
	defer cancel()
	q, err := c.ep.query(m, c.encrypted, -1)
	if err != nil {
		return nil, tm, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil {
		tm.Reused = true
		resp, err := c.roundTrip(ctx, q, &tm)
		if err == nil || ctx.Err() != nil {
			return resp, tm, err
		}
		c.closeConn() // the server may have closed an idle connection
		tm = Timing{Protocol: c.protocol}
	}
	if c.conn, err = c.dial(ctx, &tm); err != nil {
		c.conn = nil
		return nil, tm, err
	}
	if tc, ok := c.conn.(*tls.Conn); ok {
		tm.ECHAccepted = tc.ConnectionState().ECHAccepted
	}
	resp, err := c.roundTrip(ctx, q, &tm)
	return resp, tm, err
}

// roundTrip writes q behind its length and reads one response.
func (c *streamClient) roundTrip(ctx context.Context, q *dns.Msg, tm *Timing) (*dns.Msg, error) {
	b, err := q.Pack()
	if err != nil {
		return nil, err
	}
	conn := c.conn
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	start := time.Now()
	if _, err := conn.Write(frame(b)); err != nil {
		c.closeConn()
		return nil, err
	}
	resp, n, err := readStreamMsg(conn)
	if err != nil {
		c.closeConn()
		return nil, err
	}
	tm.RTT, tm.QuerySize, tm.ReplySize = time.Since(start), len(b), n
	if resp.Id != q.Id {
		c.closeConn()
		return nil, fmt.Errorf("%w: %d, want %d", ErrIDMismatch, resp.Id, q.Id)
	}
	return resp, nil
}

// readStreamMsg reads one length-prefixed DNS message.
func readStreamMsg(r io.Reader) (*dns.Msg, int, error) {
	buf, err := readFrame(r)
	if err != nil {
		return nil, 0, err
	}
	m := new(dns.Msg)
	if err := m.Unpack(buf); err != nil {
		return nil, 0, fmt.Errorf("resolver: unpacking response: %w", err)
	}
	return m, len(buf), nil
}
