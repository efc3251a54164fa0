package capture

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
)

// MSS is the TCP segment size of synthesized captures: a 1500-byte MTU
// minus 40 bytes of IPv4 and TCP headers.
const MSS = 1460

// Recorder records the bytes of the connections it wraps, with the time
// each was seen, and writes them as a pcapng with synthesized framing. It
// is the observer when the process cannot open a packet socket. It is safe
// for concurrent use by many connections.
//
// Wrap each connection once, on one side only: recording both the client's
// and the server's end of the same connection would show it twice.
type Recorder struct {
	// Now returns the time stamped on each event; nil means time.Now.
	Now func() time.Time

	mu     sync.Mutex
	conns  []ScriptConn
	events []ScriptEvent
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder { return &Recorder{} }

// ScriptConn is one recorded TCP connection or connected UDP socket.
type ScriptConn struct {
	TCP            bool
	Client, Server netip.AddrPort
}

// Event kinds of a ScriptEvent.
const (
	EventOpen    = iota // TCP handshake
	EventData           // bytes (TCP) or one datagram (UDP)
	EventClose          // FIN from one side
	EventDropped        // a send that failed
	EventReset          // RST from one side (Reset on a wrapped connection)
)

// ScriptEvent is one recorded event of a connection (or, with Conn -1,
// an unconnected UDP datagram), at the time the Recorder saw it.
type ScriptEvent struct {
	TS         time.Time
	Kind       uint8
	Conn       int  // index into conns; -1 for unconnected UDP datagrams
	FromClient bool // direction, for conn events
	Src, Dst   netip.AddrPort
	Data       []byte
}

func (r *Recorder) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// addrPort converts a TCP or UDP address; ok is false for other kinds.
func addrPort(a net.Addr) (ap netip.AddrPort, tcp, ok bool) {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.AddrPort(), true, true
	case *net.UDPAddr:
		return a.AddrPort(), false, true
	}
	return netip.AddrPort{}, false, false
}

// WrapConn records an accepted connection: its remote end is the client.
// TCP connections get a synthesized handshake now; connected UDP sockets
// record one datagram per Read and Write. Connections that are neither TCP
// nor UDP are returned unwrapped.
func (r *Recorder) WrapConn(c net.Conn) net.Conn { return r.wrap(c, false) }

// WrapDialedConn records a connection this process dialed: its local end
// is the client.
func (r *Recorder) WrapDialedConn(c net.Conn) net.Conn { return r.wrap(c, true) }

// WrapListener records every connection accepted from l (see WrapConn).
func (r *Recorder) WrapListener(l net.Listener) net.Listener { return &recListener{Listener: l, r: r} }

func (r *Recorder) wrap(c net.Conn, dialed bool) net.Conn {
	local, tcp, ok1 := addrPort(c.LocalAddr())
	remote, _, ok2 := addrPort(c.RemoteAddr())
	if !ok1 || !ok2 {
		return c
	}
	rc := ScriptConn{TCP: tcp, Client: remote, Server: local}
	if dialed {
		rc.Client, rc.Server = local, remote
	}
	r.mu.Lock()
	id := len(r.conns)
	r.conns = append(r.conns, rc)
	if tcp {
		r.events = append(r.events, ScriptEvent{TS: r.now(), Kind: EventOpen, Conn: id})
	}
	r.mu.Unlock()
	rc2 := &recordedConn{Conn: c, r: r, id: id, localIsClient: dialed, tcp: tcp}
	if pc, ok := c.(net.PacketConn); ok && !tcp {
		return &recordedUDPConn{recordedConn: rc2, pc: pc}
	}
	return rc2
}

// record notes an event that has happened.
func (r *Recorder) record(e ScriptEvent) {
	r.mu.Lock()
	e.TS = r.now()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

// begin notes bytes about to be sent, before the send: on loopback the
// peer's answer can otherwise be recorded before the question. finish
// trims the event to what was sent.
func (r *Recorder) begin(e ScriptEvent) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	e.TS = r.now()
	r.events = append(r.events, e)
	return len(r.events) - 1
}

func (r *Recorder) finish(i, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := &r.events[i]
	if n <= 0 {
		e.Kind = EventDropped
		return
	}
	e.Data = e.Data[:n]
}

type recListener struct {
	net.Listener
	r *Recorder
}

func (l *recListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.r.WrapConn(c), nil
}

// recordedConn notes every byte read and written.
type recordedConn struct {
	net.Conn
	r             *Recorder
	id            int
	localIsClient bool
	tcp           bool
	mu            sync.Mutex
	localFIN      bool
	remoteFIN     bool
}

func (c *recordedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.r.record(ScriptEvent{Kind: EventData, Conn: c.id, FromClient: !c.localIsClient, Data: append([]byte(nil), b[:n]...)})
	}
	if err == io.EOF {
		c.fin(false)
	}
	return n, err
}

func (c *recordedConn) Write(b []byte) (int, error) {
	i := c.r.begin(ScriptEvent{Kind: EventData, Conn: c.id, FromClient: c.localIsClient, Data: append([]byte(nil), b...)})
	n, err := c.Conn.Write(b)
	c.r.finish(i, n)
	return n, err
}

// recordedUDPConn is a recorded connected UDP socket that still offers
// net.PacketConn, as DNS clients expect of a UDP connection.
type recordedUDPConn struct {
	*recordedConn
	pc net.PacketConn
}

func (c *recordedUDPConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, err := c.Read(b)
	return n, c.RemoteAddr(), err
}

func (c *recordedUDPConn) WriteTo(b []byte, _ net.Addr) (int, error) { return c.Write(b) }

func (c *recordedConn) Close() error {
	c.fin(true)
	return c.Conn.Close()
}

// Reset aborts the connection with an RST (SO_LINGER 0, then close),
// recorded as the local side's RST: what the recording relays do when an
// adversary resets a client. Nothing more of the connection is recorded.
func (c *recordedConn) Reset() error {
	if tc, ok := c.Conn.(*net.TCPConn); ok {
		tc.SetLinger(0) //nolint:errcheck // without it the close is a FIN: still an end
	}
	c.mu.Lock()
	first := !c.localFIN
	c.localFIN, c.remoteFIN = true, true
	c.mu.Unlock()
	if first && c.tcp {
		c.r.record(ScriptEvent{Kind: EventReset, Conn: c.id, FromClient: c.localIsClient})
	}
	return c.Conn.Close()
}

// CloseWrite half-closes a TCP connection, recorded as the local FIN.
func (c *recordedConn) CloseWrite() error {
	cw, ok := c.Conn.(interface{ CloseWrite() error })
	if !ok {
		return fmt.Errorf("lab: %T cannot half-close", c.Conn)
	}
	c.fin(true)
	return cw.CloseWrite()
}

// fin records one side's FIN once.
func (c *recordedConn) fin(local bool) {
	c.mu.Lock()
	done := &c.remoteFIN
	if local {
		done = &c.localFIN
	}
	first := !*done
	*done = true
	c.mu.Unlock()
	if first && c.tcp {
		c.r.record(ScriptEvent{Kind: EventClose, Conn: c.id, FromClient: local == c.localIsClient})
	}
}

// WrapPacketConn records every datagram pc sends or receives, with its
// real addresses.
func (r *Recorder) WrapPacketConn(pc net.PacketConn) net.PacketConn {
	return &recordedPacketConn{PacketConn: pc, r: r}
}

type recordedPacketConn struct {
	net.PacketConn
	r *Recorder
}

func (c *recordedPacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, addr, err := c.PacketConn.ReadFrom(b)
	if n > 0 {
		c.datagram(addr, c.LocalAddr(), b[:n])
	}
	return n, addr, err
}

func (c *recordedPacketConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	i := c.datagram(c.LocalAddr(), addr, b)
	n, err := c.PacketConn.WriteTo(b, addr)
	if i >= 0 {
		c.r.finish(i, n)
	}
	return n, err
}

// datagram notes one datagram and returns its event index, or -1 for
// addresses that are not UDP.
func (c *recordedPacketConn) datagram(from, to net.Addr, b []byte) int {
	src, _, ok1 := addrPort(from)
	dst, _, ok2 := addrPort(to)
	if !ok1 || !ok2 {
		return -1
	}
	if dst.Addr().IsUnspecified() && src.Addr().IsLoopback() {
		dst = netip.AddrPortFrom(src.Addr(), dst.Port())
	}
	if src.Addr().IsUnspecified() && dst.Addr().IsLoopback() {
		src = netip.AddrPortFrom(dst.Addr(), src.Port())
	}
	return c.r.begin(ScriptEvent{Kind: EventData, Conn: -1, Src: src, Dst: dst, Data: append([]byte(nil), b...)})
}

// Script returns copies of what r recorded so far: its connections and,
// in order, their events (ScriptEvent.Conn indexes the connections).
// WriteScript of the two writes the same capture as r.WritePcapng.
func (r *Recorder) Script() ([]ScriptConn, []ScriptEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]ScriptConn(nil), r.conns...), append([]ScriptEvent(nil), r.events...)
}
