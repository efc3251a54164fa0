package server

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// relayIdle copies bytes both ways between a and b until both directions
// end, or until no byte has moved either way for idle: then it closes
// both. Each direction reads with a deadline at the last activity plus
// idle; a read that times out while the other direction was active just
// waits again. Writes get the same bound, so a peer that stops reading
// cannot hold the relay either.
func relayIdle(a, b net.Conn, idle time.Duration) {
	r := &idleRelay{idle: idle}
	r.touch()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); r.pipe(a, b) }()
	go func() { defer wg.Done(); r.pipe(b, a) }()
	wg.Wait()
	a.Close()
	b.Close()
}

type idleRelay struct {
	idle time.Duration
	last atomic.Int64 // unix nanoseconds of the last byte moved
	once sync.Once
}

func (r *idleRelay) touch() { r.last.Store(time.Now().UnixNano()) }

// deadline is when the relay counts as idle.
func (r *idleRelay) deadline() time.Time {
	return time.Unix(0, r.last.Load()).Add(r.idle)
}

// pipe copies src to dst. At EOF it half-closes dst; when the relay has
// gone idle or a side fails it closes both.
func (r *idleRelay) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		src.SetReadDeadline(r.deadline()) //nolint:errcheck
		n, err := src.Read(buf)
		if n > 0 {
			r.touch()
			dst.SetWriteDeadline(r.deadline()) //nolint:errcheck
			if _, werr := dst.Write(buf[:n]); werr != nil {
				r.abort(dst, src)
				return
			}
			r.touch()
		}
		switch {
		case err == nil:
		case errors.Is(err, os.ErrDeadlineExceeded) && time.Now().Before(r.deadline()):
			// The other direction moved bytes meanwhile: not idle.
		case !errors.Is(err, io.EOF):
			r.abort(dst, src)
			return
		default:
			if tc, ok := dst.(interface{ CloseWrite() error }); ok {
				tc.CloseWrite() //nolint:errcheck
			} else {
				dst.Close()
			}
			return
		}
	}
}

// abort closes both sides, which ends the other direction's read.
func (r *idleRelay) abort(a, b net.Conn) {
	r.once.Do(func() {
		a.Close()
		b.Close()
	})
}
