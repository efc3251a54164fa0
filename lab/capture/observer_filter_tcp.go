package capture

import (
	"errors"
	"io"
	"net"
	"slices"
	"time"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/internal/relay"
)

// FirstBytesTimeout bounds how long a relay with a Filter waits for a
// client's first bytes (for TLS, the whole first handshake message) before
// it asks Filter.Stream about what has come so far.
const FirstBytesTimeout = 3 * time.Second

// MaxFirstBytes caps the first bytes a relay with a Filter reads before it
// calls Filter.Stream: a ClientHello larger than this reaches Stream
// truncated.
const MaxFirstBytes = 64 << 10

// dialTimeout bounds a relay's dial to its backend when Observer.Dialer
// is nil.
const dialTimeout = 5 * time.Second

// dial connects a relay to its backend with o.Dialer, or else with
// dialTimeout.
func (o *Observer) dial(network, addr string) (net.Conn, error) {
	if o.Dialer != nil {
		return o.Dialer.Dial(network, addr)
	}
	return net.DialTimeout(network, addr, dialTimeout)
}

// filterTCP relays one client connection under a Filter. raw is the
// accepted connection and client the same connection as WrapConn wrapped
// it: the relay reads, writes and closes through client (so a Recorder
// sees every byte and the end) and uses raw only to make the close an
// RST. judged is called once the Filter has seen the connection's first
// bytes, or once it is clear that it never will.
func (o *Observer) filterTCP(f Filter, flow Flow, raw, client net.Conn, judged func()) {
	if flow.Role == RoleDo53 {
		judged() // Do53 over TCP is judged per message (Datagram)
		o.relayDo53TCP(f, flow, client)
		return
	}
	first, err := readFirst(client)
	if len(first) == 0 && !isTimeout(err) {
		// The client went away (or failed) before sending anything.
		judged()
		client.Close()
		return
	}
	v := f.Stream(flow, first)
	judged()
	switch v {
	case Drop:
		hold(client)
	case Reset:
		reset(raw, client)
	case ResetAfterReply:
		o.resetAfterReply(raw, client, flow.Backend, first)
	default: // Pass, and verdicts this relay does not know
		up, err := o.dial("tcp", flow.Backend)
		if err != nil {
			client.Close()
			return
		}
		if _, err := up.Write(first); err != nil {
			up.Close()
			client.Close()
			return
		}
		relay.Pipe(client, up, 0)
	}
}

// readFirst reads a client's first bytes under FirstBytesTimeout: when
// they start with a TLS handshake record (0x16), until the records hold
// the first complete handshake message (or are not TLS after all, or
// reach MaxFirstBytes); else what the first read gave. The error is the
// read error that ended it early (a timeout, io.EOF, …), nil when it
// ended because it had what it wanted.
func readFirst(c net.Conn) ([]byte, error) {
	c.SetReadDeadline(time.Now().Add(FirstBytesTimeout)) //nolint:errcheck
	defer c.SetReadDeadline(time.Time{})                 //nolint:errcheck
	buf := make([]byte, 0, 2048)
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(cap(buf), MaxFirstBytes-len(buf)))
		}
		n, err := c.Read(buf[len(buf):min(cap(buf), MaxFirstBytes)]) // Grow may give more room than asked
		buf = buf[:len(buf)+n]
		if len(buf) > 0 && (buf[0] != recordTypeHandshake || firstComplete(buf)) {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// recordTypeHandshake is the first byte of a TLS handshake record.
const recordTypeHandshake = 0x16

// firstComplete reports whether b, which starts like a TLS handshake
// record, needs no more reading: it holds the first handshake message, it
// turned out not to be a TLS record stream, or it has reached
// MaxFirstBytes.
func firstComplete(b []byte) bool {
	_, err := ech.RecordsNeeded(b)
	return !errors.Is(err, ech.ErrNeedMore) || len(b) >= MaxFirstBytes
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// hold is a black hole: it reads and discards what the client sends,
// never answering, until the client closes (or resets) the connection or
// the Observer closes it; then it closes its end.
func hold(client net.Conn) {
	io.Copy(io.Discard, client) //nolint:errcheck // any end ends the hold
	client.Close()
}

// reset aborts the client connection with an RST: through the wrapper
// when it can reset (a Recorder's connection records the RST, and its
// synthesized capture shows it), else SO_LINGER 0 on the accepted socket,
// then the close through the wrapper.
func reset(raw, client net.Conn) {
	if r, ok := client.(interface{ Reset() error }); ok {
		r.Reset() //nolint:errcheck // the connection is gone either way
		return
	}
	if tc, ok := raw.(*net.TCPConn); ok {
		tc.SetLinger(0) //nolint:errcheck // without it the close is a FIN: still an end
	}
	client.Close()
}

// resetAfterReply forwards first (and what the client sends after it) to
// a fresh connection to backend, and when the backend's first reply bytes
// arrive, does not forward them: it resets the client and closes the
// backend. If the backend closes or fails without replying, the client's
// connection is closed plainly.
func (o *Observer) resetAfterReply(raw, client net.Conn, backend string, first []byte) {
	up, err := o.dial("tcp", backend)
	if err != nil {
		client.Close()
		return
	}
	if _, err := up.Write(first); err != nil {
		up.Close()
		client.Close()
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := io.Copy(up, client); err == nil {
			up.(*net.TCPConn).CloseWrite() //nolint:errcheck // the client half-closed: pass it on
			return
		}
		up.Close() // the client's side ended (or the Observer closed it): stop waiting for the reply
	}()
	var b [1]byte
	n, _ := up.Read(b[:])
	if n > 0 {
		reset(raw, client)
	} else {
		client.Close()
	}
	up.Close()
	<-done
}
