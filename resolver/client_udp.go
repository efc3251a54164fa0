package resolver

import (
	"context"
	"time"

	"github.com/miekg/dns"
)

// udpClient is Do53 over UDP: a fresh socket per query, and a retry over
// TCP when the response comes back truncated.
type udpClient struct{ ep *endpoint }

func (c *udpClient) Address() string { return c.ep.Address() }

func (c *udpClient) Close() error { return nil }

func (c *udpClient) Exchange(ctx context.Context, m *dns.Msg) (*dns.Msg, error) {
	resp, _, err := c.exchangeTimed(ctx, m)
	return resp, err
}

func (c *udpClient) exchangeTimed(ctx context.Context, m *dns.Msg) (*dns.Msg, Timing, error) {
	tm := Timing{Protocol: "udp"}
	ctx, cancel := c.ep.deadline(ctx)
	defer cancel()
	q, err := c.ep.query(m, false, -1)
	if err != nil {
		return nil, tm, err
	}
	b, err := q.Pack()
	if err != nil {
		return nil, tm, err
	}
	conn, err := c.ep.opts.Dialer.DialContext(ctx, "udp", c.ep.addr)
	if err != nil {
		return nil, tm, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	tm.QuerySize = len(b)
	start := time.Now()
	if _, err := conn.Write(b); err != nil {
		return nil, tm, err
	}
	buf := make([]byte, maxMessage)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil, tm, ctx.Err()
			}
			return nil, tm, err
		}
		resp := new(dns.Msg)
		if resp.Unpack(buf[:n]) != nil || resp.Id != q.Id {
			continue // not our answer: keep waiting, as a stub must
		}
		tm.RTT, tm.ReplySize = time.Since(start), n
		if !resp.Truncated {
			return resp, tm, nil
		}
		return c.retryTCP(ctx, m, tm)
	}
}

// retryTCP asks the same question over TCP after a truncated UDP answer.
func (c *udpClient) retryTCP(ctx context.Context, m *dns.Msg, udp Timing) (*dns.Msg, Timing, error) {
	tcp := newTCPClient(c.ep)
	defer tcp.Close()
	resp, tm, err := tcp.exchangeTimed(ctx, m)
	tm.TCPFallback = true
	tm.RTT += udp.RTT
	return resp, tm, err
}
