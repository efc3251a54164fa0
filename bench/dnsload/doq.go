package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/quic-go/quic-go"
)

// DoQ application error codes (RFC 9250 §4.3).
const (
	doqNoError          = 0x0
	doqRequestCancelled = 0x3
)

// doqConn is DoQ (RFC 9250): one QUIC connection, a bidirectional stream
// per query, the query with a 2-byte length prefix and ID 0, then FIN.
type doqConn struct{ c *quic.Conn }

func dialDoQ(ctx context.Context, cfg *Config) (*doqConn, error) {
	tc := cfg.TLS.Clone()
	tc.NextProtos = []string{alpnQ}
	c, err := quic.DialAddr(ctx, cfg.Addr, tc, &quic.Config{
		HandshakeIdleTimeout: cfg.Timeout,
		MaxIdleTimeout:       30 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("dnsload: doq dial %s: %w", cfg.Addr, err)
	}
	return &doqConn{c: c}, nil
}

func (d *doqConn) id(int) uint16 { return 0 }

func (d *doqConn) exchange(ctx context.Context, it *item, _ int, buf *[]byte) ([]byte, error) {
	str, err := d.c.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		str.SetDeadline(dl)
	}
	resp, err := d.roundTrip(str, it, buf)
	if err != nil {
		str.CancelRead(doqRequestCancelled)
		str.CancelWrite(doqRequestCancelled)
	}
	return resp, err
}

func (d *doqConn) roundTrip(str *quic.Stream, it *item, buf *[]byte) ([]byte, error) {
	if _, err := str.Write(it.framed); err != nil {
		return nil, err
	}
	if err := str.Close(); err != nil { // STREAM FIN: the query is complete
		return nil, err
	}
	// The response is one length-prefixed message and then FIN.
	b, err := readMessage(str, buf, 2+65535)
	if err != nil {
		return nil, err
	}
	if len(b) < 2 || int(binary.BigEndian.Uint16(b)) != len(b)-2 {
		return nil, fmt.Errorf("%w: doq stream of %d bytes is not one length-prefixed message", errProtocol, len(b))
	}
	return b[2:], nil
}

// errProtocol is wrapped by transport-level violations (framing, status).
var errProtocol = errors.New("dnsload: protocol error")

func (d *doqConn) Close() error { return d.c.CloseWithError(doqNoError, "") }
