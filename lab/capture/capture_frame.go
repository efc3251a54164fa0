package capture

import (
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"runtime"
	"time"
)

// WritePcapng writes everything recorded so far as a pcapng of Ethernet
// frames (zero MACs, as on Linux "lo") whose section header comment is
// SynthComment.
func (r *Recorder) WritePcapng(w io.Writer) error {
	conns, events := r.Script()
	return WriteScript(w, conns, events)
}

// WriteScript writes a synthesized capture, framed like a Recorder's
// (pcapng, Ethernet/IP/TCP/UDP, TCP handshakes and MSS-sized segments), of
// the connections conns and the events that open them, carry data on them
// (or, with Conn -1, one UDP datagram from Src to Dst) and close them.
// Recorder.WritePcapng is WriteScript of Recorder.Script; tests use it to
// build captures no client sends.
func WriteScript(w io.Writer, conns []ScriptConn, events []ScriptEvent) error {
	nw, err := newSynthWriter(w)
	if err != nil {
		return err
	}
	s := &synthesizer{w: nw, conns: conns, state: make([]tcpSynthState, len(conns))}
	for i := range s.state {
		s.state[i] = tcpSynthState{cseq: isn(i, 1), sseq: isn(i, 2)}
	}
	for _, e := range coalesce(events) {
		if e.Kind == EventDropped {
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
func coalesce(events []ScriptEvent) []ScriptEvent {
	out := make([]ScriptEvent, 0, len(events))
	for _, e := range events {
		if n := len(out); n > 0 && e.Kind == EventData && e.Conn >= 0 {
			last := &out[n-1]
			if last.Kind == EventData && last.Conn == e.Conn && last.FromClient == e.FromClient &&
				e.TS.Sub(last.TS) < time.Millisecond {
				last.Data = append(last.Data[:len(last.Data):len(last.Data)], e.Data...)
				continue
			}
		}
		out = append(out, e)
	}
	return out
}

// newSynthWriter opens a pcapng writer whose section says what it is.
func newSynthWriter(w io.Writer) (*ngWriter, error) {
	intf := ngInterfaceDesc{Name: "lo", Description: "echlab recorder", OS: runtime.GOOS,
		Link: LinkTypeEthernet, SnapLen: maxPacket}
	sec := ngSection{Hardware: runtime.GOARCH, OS: runtime.GOOS, Application: "echlab", Comment: SynthComment}
	nw, err := newNgWriter(w, sec, intf)
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
	w     *ngWriter
	conns []ScriptConn
	state []tcpSynthState
	buf   []byte
}

func (s *synthesizer) event(e ScriptEvent) error {
	if e.Conn < 0 {
		return s.packet(e.TS, e.Src, e.Dst, 17, 0, 0, 0, e.Data)
	}
	c, st := s.conns[e.Conn], &s.state[e.Conn]
	if !c.TCP {
		src, dst := c.Client, c.Server
		if !e.FromClient {
			src, dst = dst, src
		}
		return s.packet(e.TS, src, dst, 17, 0, 0, 0, e.Data)
	}
	switch e.Kind {
	case EventOpen:
		return s.handshake(e.TS, c, st)
	case EventData:
		return s.data(e.TS, c, st, e.FromClient, e.Data)
	case EventReset:
		return s.rst(e.TS, c, st, e.FromClient)
	default:
		return s.fin(e.TS, c, st, e.FromClient)
	}
}

func (s *synthesizer) handshake(ts time.Time, c ScriptConn, st *tcpSynthState) error {
	if err := s.packet(ts, c.Client, c.Server, 6, st.cseq, 0, TCPSYN, nil); err != nil {
		return err
	}
	st.cseq++
	if err := s.packet(ts, c.Server, c.Client, 6, st.sseq, st.cseq, TCPSYN|TCPACK, nil); err != nil {
		return err
	}
	st.sseq++
	return s.packet(ts, c.Client, c.Server, 6, st.cseq, st.sseq, TCPACK, nil)
}

// data sends b in MSS-sized segments, then the peer's ACK.
func (s *synthesizer) data(ts time.Time, c ScriptConn, st *tcpSynthState, fromClient bool, b []byte) error {
	src, dst, seq, ack := c.Client, c.Server, &st.cseq, &st.sseq
	if !fromClient {
		src, dst, seq, ack = dst, src, ack, seq
	}
	for len(b) > 0 {
		n := min(len(b), MSS)
		flags := uint8(TCPACK)
		if n == len(b) {
			flags |= 0x08 // PSH
		}
		if err := s.packet(ts, src, dst, 6, *seq, *ack, flags, b[:n]); err != nil {
			return err
		}
		*seq += uint32(n)
		b = b[n:]
	}
	return s.packet(ts, dst, src, 6, *ack, *seq, TCPACK, nil)
}

func (s *synthesizer) fin(ts time.Time, c ScriptConn, st *tcpSynthState, fromClient bool) error {
	src, dst, seq, ack := c.Client, c.Server, &st.cseq, &st.sseq
	if !fromClient {
		src, dst, seq, ack = dst, src, ack, seq
	}
	if err := s.packet(ts, src, dst, 6, *seq, *ack, TCPFIN|TCPACK, nil); err != nil {
		return err
	}
	*seq++
	return s.packet(ts, dst, src, 6, *ack, *seq, TCPACK, nil)
}

// rst ends a connection with one side's RST (no answer: the peer's stack
// drops the connection).
func (s *synthesizer) rst(ts time.Time, c ScriptConn, st *tcpSynthState, fromClient bool) error {
	src, dst, seq, ack := c.Client, c.Server, st.cseq, st.sseq
	if !fromClient {
		src, dst, seq, ack = dst, src, ack, seq
	}
	return s.packet(ts, src, dst, 6, seq, ack, TCPRST|TCPACK, nil)
}

// packet writes one Ethernet frame.
func (s *synthesizer) packet(ts time.Time, src, dst netip.AddrPort, proto uint8, seq, ack uint32, flags uint8, payload []byte) error {
	s.buf = buildFrame(s.buf[:0], src, dst, proto, seq, ack, flags, payload)
	if err := s.w.writePacket(ts, s.buf); err != nil {
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
