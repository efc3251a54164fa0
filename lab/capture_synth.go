package lab

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
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
	conns  []recConn
	events []recEvent
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder { return &Recorder{} }

// recConn is one recorded TCP connection or connected UDP socket.
type recConn struct {
	tcp            bool
	client, server netip.AddrPort
}

// Event kinds.
const (
	evOpen    = iota // TCP handshake
	evData           // bytes (TCP) or one datagram (UDP)
	evClose          // FIN from one side
	evDropped        // a send that failed
)

type recEvent struct {
	ts         time.Time
	kind       uint8
	conn       int  // index into conns; -1 for unconnected UDP datagrams
	fromClient bool // direction, for conn events
	src, dst   netip.AddrPort
	data       []byte
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
	rc := recConn{tcp: tcp, client: remote, server: local}
	if dialed {
		rc.client, rc.server = local, remote
	}
	r.mu.Lock()
	id := len(r.conns)
	r.conns = append(r.conns, rc)
	if tcp {
		r.events = append(r.events, recEvent{ts: r.now(), kind: evOpen, conn: id})
	}
	r.mu.Unlock()
	rc2 := &recordedConn{Conn: c, r: r, id: id, localIsClient: dialed, tcp: tcp}
	if pc, ok := c.(net.PacketConn); ok && !tcp {
		return &recordedUDPConn{recordedConn: rc2, pc: pc}
	}
	return rc2
}

// record notes an event that has happened.
func (r *Recorder) record(e recEvent) {
	r.mu.Lock()
	e.ts = r.now()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

// begin notes bytes about to be sent, before the send: on loopback the
// peer's answer can otherwise be recorded before the question. finish
// trims the event to what was sent.
func (r *Recorder) begin(e recEvent) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	e.ts = r.now()
	r.events = append(r.events, e)
	return len(r.events) - 1
}

func (r *Recorder) finish(i, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := &r.events[i]
	if n <= 0 {
		e.kind = evDropped
		return
	}
	e.data = e.data[:n]
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
		c.r.record(recEvent{kind: evData, conn: c.id, fromClient: !c.localIsClient, data: append([]byte(nil), b[:n]...)})
	}
	if err == io.EOF {
		c.fin(false)
	}
	return n, err
}

func (c *recordedConn) Write(b []byte) (int, error) {
	i := c.r.begin(recEvent{kind: evData, conn: c.id, fromClient: c.localIsClient, data: append([]byte(nil), b...)})
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
		c.r.record(recEvent{kind: evClose, conn: c.id, fromClient: local == c.localIsClient})
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
	return c.r.begin(recEvent{kind: evData, conn: -1, src: src, dst: dst, data: append([]byte(nil), b...)})
}

// WritePcapng writes everything recorded so far as a pcapng of Ethernet
// frames (zero MACs, as on Linux "lo") whose section header comment is
// SynthComment.
func (r *Recorder) WritePcapng(w io.Writer) error {
	r.mu.Lock()
	conns := append([]recConn(nil), r.conns...)
	events := append([]recEvent(nil), r.events...)
	r.mu.Unlock()
	nw, err := newSynthWriter(w)
	if err != nil {
		return err
	}
	s := &synthesizer{w: nw, conns: conns, state: make([]tcpSynthState, len(conns))}
	for i := range s.state {
		s.state[i] = tcpSynthState{cseq: isn(i, 1), sseq: isn(i, 2)}
	}
	for _, e := range coalesce(events) {
		if e.kind == evDropped {
			continue
		}
		if err := s.event(e); err != nil {
			return err
		}
	}
	return nw.Flush()
}

// coalesce joins adjacent reads or writes of one TCP connection in one
// direction: a reader sees the sender's single write in buffer-sized
// pieces, and the wire carries it as MSS-sized segments, not as those
// pieces.
func coalesce(events []recEvent) []recEvent {
	out := make([]recEvent, 0, len(events))
	for _, e := range events {
		if n := len(out); n > 0 && e.kind == evData && e.conn >= 0 {
			last := &out[n-1]
			if last.kind == evData && last.conn == e.conn && last.fromClient == e.fromClient &&
				e.ts.Sub(last.ts) < time.Millisecond {
				last.data = append(last.data[:len(last.data):len(last.data)], e.data...)
				continue
			}
		}
		out = append(out, e)
	}
	return out
}

// newSynthWriter opens a pcapng writer whose section says what it is.
func newSynthWriter(w io.Writer) (*pcapgo.NgWriter, error) {
	intf := pcapgo.NgInterface{Name: "lo", Description: "echlab recorder", OS: runtime.GOOS,
		LinkType: layers.LinkTypeEthernet, TimestampResolution: 9, SnapLength: maxPacket}
	opts := pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{
		Hardware: runtime.GOARCH, OS: runtime.GOOS, Application: "echlab", Comment: SynthComment}}
	nw, err := pcapgo.NewNgWriterInterface(w, intf, opts)
	if err != nil {
		return nil, fmt.Errorf("lab: writing pcapng header: %w", err)
	}
	return nw, nil
}

// isn is a fixed initial sequence number per connection and side, so that
// the same recording always gives the same file.
func isn(conn, side int) uint32 {
	x := uint32(conn)*2654435761 + uint32(side)*40503
	return x ^ x>>13 ^ 0x5bd1e995
}

// tcpSynthState is the next sequence number of each side.
type tcpSynthState struct{ cseq, sseq uint32 }

type synthesizer struct {
	w     *pcapgo.NgWriter
	conns []recConn
	state []tcpSynthState
	buf   []byte
}

func (s *synthesizer) event(e recEvent) error {
	if e.conn < 0 {
		return s.packet(e.ts, e.src, e.dst, 17, 0, 0, 0, e.data)
	}
	c, st := s.conns[e.conn], &s.state[e.conn]
	if !c.tcp {
		src, dst := c.client, c.server
		if !e.fromClient {
			src, dst = dst, src
		}
		return s.packet(e.ts, src, dst, 17, 0, 0, 0, e.data)
	}
	switch e.kind {
	case evOpen:
		return s.handshake(e.ts, c, st)
	case evData:
		return s.data(e.ts, c, st, e.fromClient, e.data)
	default:
		return s.fin(e.ts, c, st, e.fromClient)
	}
}

func (s *synthesizer) handshake(ts time.Time, c recConn, st *tcpSynthState) error {
	if err := s.packet(ts, c.client, c.server, 6, st.cseq, 0, tcpSYN, nil); err != nil {
		return err
	}
	st.cseq++
	if err := s.packet(ts, c.server, c.client, 6, st.sseq, st.cseq, tcpSYN|tcpACK, nil); err != nil {
		return err
	}
	st.sseq++
	return s.packet(ts, c.client, c.server, 6, st.cseq, st.sseq, tcpACK, nil)
}

// data sends b in MSS-sized segments, then the peer's ACK.
func (s *synthesizer) data(ts time.Time, c recConn, st *tcpSynthState, fromClient bool, b []byte) error {
	src, dst, seq, ack := c.client, c.server, &st.cseq, &st.sseq
	if !fromClient {
		src, dst, seq, ack = dst, src, ack, seq
	}
	for len(b) > 0 {
		n := min(len(b), MSS)
		flags := uint8(tcpACK)
		if n == len(b) {
			flags |= 0x08 // PSH
		}
		if err := s.packet(ts, src, dst, 6, *seq, *ack, flags, b[:n]); err != nil {
			return err
		}
		*seq += uint32(n)
		b = b[n:]
	}
	return s.packet(ts, dst, src, 6, *ack, *seq, tcpACK, nil)
}

func (s *synthesizer) fin(ts time.Time, c recConn, st *tcpSynthState, fromClient bool) error {
	src, dst, seq, ack := c.client, c.server, &st.cseq, &st.sseq
	if !fromClient {
		src, dst, seq, ack = dst, src, ack, seq
	}
	if err := s.packet(ts, src, dst, 6, *seq, *ack, tcpFIN|tcpACK, nil); err != nil {
		return err
	}
	*seq++
	return s.packet(ts, dst, src, 6, *ack, *seq, tcpACK, nil)
}

// packet writes one Ethernet frame.
func (s *synthesizer) packet(ts time.Time, src, dst netip.AddrPort, proto uint8, seq, ack uint32, flags uint8, payload []byte) error {
	s.buf = buildFrame(s.buf[:0], src, dst, proto, seq, ack, flags, payload)
	ci := gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(s.buf), Length: len(s.buf)}
	if err := s.w.WritePacket(ci, s.buf); err != nil {
		return fmt.Errorf("lab: writing pcapng: %w", err)
	}
	return nil
}

// buildFrame appends an Ethernet/IP/TCP-or-UDP frame with correct lengths
// and checksums to b.
func buildFrame(b []byte, src, dst netip.AddrPort, proto uint8, seq, ack uint32, flags uint8, payload []byte) []byte {
	v4 := src.Addr().Is4() && dst.Addr().Is4()
	et := uint16(0x86dd)
	if v4 {
		et = 0x0800
	}
	b = append(b, make([]byte, 12)...)
	b = binary.BigEndian.AppendUint16(b, et)
	thl := 8
	if proto == 6 {
		thl = 20
	}
	tl := thl + len(payload)
	ipStart := len(b)
	if v4 {
		b = append(b, 0x45, 0)
		b = binary.BigEndian.AppendUint16(b, uint16(20+tl))
		b = append(b, 0, 0, 0x40, 0, 64, proto, 0, 0)
		s4, d4 := src.Addr().As4(), dst.Addr().As4()
		b = append(b, s4[:]...)
		b = append(b, d4[:]...)
		binary.BigEndian.PutUint16(b[ipStart+10:], ^fold(sum16(b[ipStart:ipStart+20], 0)))
	} else {
		b = append(b, 0x60, 0, 0, 0)
		b = binary.BigEndian.AppendUint16(b, uint16(tl))
		b = append(b, proto, 64)
		s16, d16 := src.Addr().As16(), dst.Addr().As16()
		b = append(b, s16[:]...)
		b = append(b, d16[:]...)
	}
	tStart := len(b)
	b = binary.BigEndian.AppendUint16(b, src.Port())
	b = binary.BigEndian.AppendUint16(b, dst.Port())
	if proto == 6 {
		b = binary.BigEndian.AppendUint32(b, seq)
		b = binary.BigEndian.AppendUint32(b, ack)
		b = append(b, 5<<4, flags, 0xff, 0xff, 0, 0, 0, 0)
	} else {
		b = binary.BigEndian.AppendUint16(b, uint16(tl))
		b = append(b, 0, 0)
	}
	b = append(b, payload...)
	csum := ^fold(sum16(b[tStart:], pseudoHeader(src.Addr(), dst.Addr(), proto, tl)))
	if proto == 17 && csum == 0 {
		csum = 0xffff
	}
	off := 16
	if proto == 17 {
		off = 6
	}
	binary.BigEndian.PutUint16(b[tStart+off:], csum)
	return b
}

func pseudoHeader(src, dst netip.Addr, proto uint8, length int) uint32 {
	var sum uint32
	sum = sum16(src.AsSlice(), sum)
	sum = sum16(dst.AsSlice(), sum)
	return sum + uint32(proto) + uint32(length)
}

// sum16 adds b as big-endian 16-bit words to sum (RFC 1071).
func sum16(b []byte, sum uint32) uint32 {
	for len(b) >= 2 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	return sum
}

func fold(sum uint32) uint16 {
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return uint16(sum)
}
