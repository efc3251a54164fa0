package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
)

// conn is one connection of the load: M workers call exchange on it at
// once, each with its own slot (0 ≤ slot < InFlight) and buffer.
type conn interface {
	// exchange sends its query and returns the response's bytes, which
	// may live in buf (grown as needed) until the slot's next exchange.
	exchange(ctx context.Context, it *item, slot int, buf *[]byte) ([]byte, error)
	// id is the DNS message ID the query of slot carries.
	id(slot int) uint16
	Close() error
}

// dial opens one connection of cfg's transport and completes its
// handshake, so that the run's clock never counts connection setup.
func dial(ctx context.Context, cfg *Config, items []item) (conn, error) {
	switch cfg.Transport {
	case DoQ:
		return dialDoQ(ctx, cfg)
	case DoH3, DoH2:
		return dialDoH(ctx, cfg, items)
	case DoT:
		return dialDoT(ctx, cfg)
	}
	return nil, fmt.Errorf("%w: transport %q", ErrConfig, cfg.Transport)
}

// dohURL is the GET URL of a query (RFC 8484 §4.1: base64url, no padding).
func dohURL(cfg *Config, wire []byte) string {
	return "https://" + cfg.Addr + cfg.Path + "?dns=" + base64.RawURLEncoding.EncodeToString(wire)
}

// readMessage reads all of r into *buf (grown up to limit) and returns it.
func readMessage(r io.Reader, buf *[]byte, limit int) ([]byte, error) {
	b := (*buf)[:0]
	for {
		if len(b) == cap(b) {
			if len(b) > limit {
				return nil, fmt.Errorf("dnsload: response longer than %d bytes", limit)
			}
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			*buf = b
			return b, nil
		}
		if err != nil {
			*buf = b
			return nil, err
		}
	}
}
