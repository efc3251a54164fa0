// Package relay copies bytes both ways between two connections, passing
// half-closes on: the split-mode ECH front (server) and the lab's
// recording observer (lab) relay client connections with it.
package relay

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// bufSize is the copy buffer of each direction.
const bufSize = 32 << 10

// Pipe copies bytes both ways between a and b until both directions end,
// then closes both. When one side's reads reach EOF, Pipe half-closes the
// other side (CloseWrite where the conn has it, Close otherwise) and the
// opposite direction goes on. A read or write error closes both sides.
//
// With idle > 0, Pipe also closes both when no byte has moved either way
// for idle: each direction reads with a deadline at the last activity plus
// idle, and a read that times out while the other direction was active
// just waits again. Writes get the same bound, so a peer that stops
// reading cannot hold the relay either. With idle <= 0 Pipe sets no
// deadlines.
//
// One direction runs on the caller's goroutine and one on a new one; the
// copy buffers come from a pool shared by every Pipe.
func Pipe(a, b net.Conn, idle time.Duration) {
	p := &pipe{idle: idle}
	p.touch()
	done := make(chan struct{})
	go func() { defer close(done); p.copy(a, b) }()
	p.copy(b, a)
	<-done
	a.Close()
	b.Close()
}

// bufs holds copy buffers between connections: a relayed connection that
// carries only a handshake would otherwise allocate (and zero) two of them.
var bufs = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

// pipe is the state the two directions of one Pipe share.
type pipe struct {
	idle time.Duration
	last atomic.Int64 // unix nanoseconds of the last byte moved
	once sync.Once
}

func (p *pipe) touch() {
	if p.idle > 0 {
		p.last.Store(time.Now().UnixNano())
	}
}

// deadline is when the relay counts as idle; zero (no deadline) without
// an idle bound.
func (p *pipe) deadline() time.Time {
	if p.idle <= 0 {
		return time.Time{}
	}
	return time.Unix(0, p.last.Load()).Add(p.idle)
}

// copy copies src to dst. At EOF it half-closes dst; when the relay has
// gone idle or a side fails it closes both.
func (p *pipe) copy(dst, src net.Conn) {
	bp := bufs.Get().(*[]byte)
	defer bufs.Put(bp)
	buf := *bp
	for {
		if p.idle > 0 {
			src.SetReadDeadline(p.deadline()) //nolint:errcheck
		}
		n, err := src.Read(buf)
		if n > 0 {
			p.touch()
			if p.idle > 0 {
				dst.SetWriteDeadline(p.deadline()) //nolint:errcheck
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				p.abort(dst, src)
				return
			}
			p.touch()
		}
		switch {
		case err == nil:
		case p.idle > 0 && errors.Is(err, os.ErrDeadlineExceeded) && time.Now().Before(p.deadline()):
			// The other direction moved bytes meanwhile: not idle.
		case !errors.Is(err, io.EOF):
			p.abort(dst, src)
			return
		default:
			closeWrite(dst)
			return
		}
	}
}

// closeWrite half-closes c, or closes it when it cannot half-close.
func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite() //nolint:errcheck // the relay ends either way
		return
	}
	c.Close()
}

// abort closes both sides, which ends the other direction's read.
func (p *pipe) abort(a, b net.Conn) {
	p.once.Do(func() {
		a.Close()
		b.Close()
	})
}
