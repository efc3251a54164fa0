package main

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
)

// dotConn is DoT (RFC 7858) with queries pipelined on one TLS connection:
// the query of slot s carries ID s, and a reader hands each response to
// the slot its ID names, so answers may come in any order (RFC 7766 §6.2.1).
type dotConn struct {
	c     *tls.Conn
	wmu   sync.Mutex
	slots []chan []byte
	done  chan struct{} // closed when the reader stops
	err   error         // why it stopped; read after done
}

func dialDoT(ctx context.Context, cfg *Config) (*dotConn, error) {
	// No ALPN: RFC 7858 defines none, and a server that sets its own
	// list refuses a hello whose list matches none of it.
	d := tls.Dialer{Config: cfg.TLS}
	c, err := d.DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("dnsload: dot dial %s: %w", cfg.Addr, err)
	}
	dc := &dotConn{c: c.(*tls.Conn), slots: make([]chan []byte, cfg.InFlight), done: make(chan struct{})}
	for i := range dc.slots {
		dc.slots[i] = make(chan []byte, 1)
	}
	go dc.read()
	return dc, nil
}

func (d *dotConn) id(slot int) uint16 { return uint16(slot) }

// read hands responses to their slots until the connection fails or a
// response names no waiting slot.
func (d *dotConn) read() {
	defer close(d.done)
	var hdr [2]byte
	for {
		if _, err := io.ReadFull(d.c, hdr[:]); err != nil {
			d.err = err
			return
		}
		m := make([]byte, binary.BigEndian.Uint16(hdr[:]))
		if _, err := io.ReadFull(d.c, m); err != nil {
			d.err = err
			return
		}
		if len(m) < 2 || int(binary.BigEndian.Uint16(m)) >= len(d.slots) {
			d.err = fmt.Errorf("%w: dot response of %d bytes with an ID no query has", errProtocol, len(m))
			d.c.Close()
			return
		}
		select {
		case d.slots[binary.BigEndian.Uint16(m)] <- m:
		default:
			d.err = fmt.Errorf("%w: a second dot response for ID %d", errProtocol, binary.BigEndian.Uint16(m))
			d.c.Close()
			return
		}
	}
}

func (d *dotConn) exchange(ctx context.Context, it *item, slot int, buf *[]byte) ([]byte, error) {
	b := append((*buf)[:0], it.framed...)
	binary.BigEndian.PutUint16(b[2:], uint16(slot))
	*buf = b
	d.wmu.Lock()
	_, err := d.c.Write(b)
	d.wmu.Unlock()
	if err != nil {
		return nil, err
	}
	select {
	case m := <-d.slots[slot]:
		return m, nil
	case <-d.done:
		return nil, fmt.Errorf("dnsload: dot connection: %w", d.err)
	case <-ctx.Done():
		// A late answer would reach the slot's next query: give up the
		// connection instead.
		d.c.Close()
		return nil, ctx.Err()
	}
}

func (d *dotConn) Close() error {
	err := d.c.Close()
	<-d.done
	if err != nil && !isClosed(err) {
		return err
	}
	return nil
}

func isClosed(err error) bool { return errors.Is(err, net.ErrClosed) }
