package capture

import (
	"bufio"
	"errors"
	"io"
	"net"
	"slices"
	"sync"
)

// relayDo53TCP relays a DNS-over-TCP connection (RFC 1035 §4.2.2: each
// message after a 2-byte length) to flow.Backend under a Filter: each
// message, both ways, goes through Filter.Datagram without its prefix,
// and what it returns goes on with a new prefix; a message it drops or
// resets is not forwarded (the connection goes on). Half-closes are passed
// on as relay.Pipe passes them; a read or write error closes both sides.
func (o *Observer) relayDo53TCP(f Filter, flow Flow, client net.Conn) {
	up, err := o.dial("tcp", flow.Backend)
	if err != nil {
		client.Close()
		return
	}
	var once sync.Once
	abort := func() {
		once.Do(func() {
			client.Close()
			up.Close()
		})
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		copyDNSMessages(f, flow, false, client, up, abort)
	}()
	copyDNSMessages(f, flow, true, up, client, abort)
	<-done
	client.Close()
	up.Close()
}

// copyDNSMessages copies length-prefixed DNS messages from src to dst
// through f.Datagram until src ends. At a clean end (between messages) it
// half-closes dst; a message cut short by the end is forwarded as it came
// (the filter cannot judge half a message), then dst is half-closed. Any
// other error, or a failed write, calls abort.
func copyDNSMessages(f Filter, flow Flow, toServer bool, dst, src net.Conn, abort func()) {
	r := bufio.NewReader(src)
	var msg, out []byte
	for {
		var hdr [2]byte
		if k, err := io.ReadFull(r, hdr[:]); err != nil {
			endDNSCopy(dst, hdr[:k], err, abort)
			return
		}
		n := int(hdr[0])<<8 | int(hdr[1])
		msg = slices.Grow(msg[:0], n)[:n]
		if k, err := io.ReadFull(r, msg); err != nil {
			endDNSCopy(dst, append(hdr[:], msg[:k]...), err, abort)
			return
		}
		b, v := f.Datagram(flow, toServer, msg)
		if v != Pass || len(b) > 0xffff {
			continue // discarded (a rewrite too long to frame is discarded too)
		}
		out = append(append(out[:0], byte(len(b)>>8), byte(len(b))), b...)
		if _, err := dst.Write(out); err != nil {
			abort()
			return
		}
	}
}

// endDNSCopy ends one direction of relayDo53TCP after a read error err,
// with partial the bytes of an incomplete message read before it.
func endDNSCopy(dst net.Conn, partial []byte, err error, abort func()) {
	if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		abort()
		return
	}
	if len(partial) > 0 {
		if _, err := dst.Write(partial); err != nil {
			abort()
			return
		}
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		if cw.CloseWrite() == nil {
			return
		}
	}
	abort()
}
