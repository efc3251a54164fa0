package capture

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// Sentinel errors of the capture readers and writers.
var (
	// ErrNotCapture means the input is neither pcap nor pcapng.
	ErrNotCapture = errors.New("lab: not a pcap or pcapng capture")
	// ErrTruncated means the capture ends inside its file header.
	ErrTruncated = errors.New("lab: capture truncated")
	// ErrMalformed means the capture's block structure is broken.
	ErrMalformed = errors.New("lab: malformed capture")
)

// CaptureError names where in a capture file reading failed.
type CaptureError struct {
	Format string // "pcap" or "pcapng"
	Offset int64  // byte offset of the bad header or block
	Field  string // e.g. "block_total_length"
	Err    error  // ErrTruncated or ErrMalformed
}

func (e *CaptureError) Error() string {
	return fmt.Sprintf("lab: %s at offset %d: %s: %v", e.Format, e.Offset, e.Field, e.Err)
}

// Unwrap returns the sentinel error.
func (e *CaptureError) Unwrap() error { return e.Err }

// SynthComment is the section header comment of captures a Recorder wrote.
const SynthComment = "echlab synthesized capture"

// maxPacket bounds the bytes of a single captured packet we accept.
const maxPacket = 256 << 10

const (
	pcapngSHB = 0x0A0D0D0A
	pcapngEPB = 6
)

// Packet is one decoded IP packet carrying TCP or UDP.
type Packet struct {
	TS       time.Time
	Src, Dst netip.AddrPort
	Proto    uint8 // 6 TCP, 17 UDP
	Seq, Ack uint32
	Flags    uint8 // TCP flags
	Payload  []byte
}

// TCP flag bits.
const (
	TCPFIN = 0x01
	TCPSYN = 0x02
	TCPRST = 0x04
	TCPACK = 0x10
)

// Meta is what Read learns about the capture file itself.
type Meta struct {
	Format      string
	Comment     string
	Packets     int
	Undecodable int
	Warnings    []string
}

// packetSource is pcapgo's pcap or pcapng reader; its packet buffer is
// reused for the next packet.
type packetSource interface {
	ZeroCopyReadPacketData() ([]byte, gopacket.CaptureInfo, error)
}

// Read reads a pcap or pcapng from r, one packet at a time, and calls fn
// for every IPv4/IPv6 TCP or UDP packet: memory does not grow with the
// file. p and p.Payload are only valid during the call: both are reused for
// the next packet (fn copies what it keeps).
// A file cut short inside a packet is a warning; a bad file header, or a
// pcapng block whose structure is broken anywhere in the file, is an error
// (fn may have seen the packets before it).
func Read(r io.Reader, fn func(*Packet)) (*Meta, error) {
	meta := &Meta{}
	in := &readErr{r: r}
	src, blocks, linkOf, err := openCapture(in, meta)
	if in.err != nil {
		return nil, fmt.Errorf("lab: reading capture: %w", in.err)
	}
	if err != nil {
		return nil, err
	}
	var p Packet
	for {
		raw, ci, err := src.ZeroCopyReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			if blocks != nil {
				if err := blocks.drain(); err != nil {
					return nil, err
				}
			}
			meta.Warnings = append(meta.Warnings, fmt.Sprintf("capture cut short after %d packets: %v", meta.Packets, err))
			break
		}
		meta.Packets++
		if !decodeLink(&p, linkOf(ci), raw) {
			meta.Undecodable++
			continue
		}
		p.TS = ci.Timestamp
		fn(&p)
	}
	if in.err != nil {
		return nil, fmt.Errorf("lab: reading capture: %w", in.err)
	}
	if blocks != nil {
		if err := blocks.failure(); err != nil {
			return nil, err
		}
		if blocks.trailing > 0 {
			meta.Warnings = append([]string{fmt.Sprintf("pcapng cut short: %d trailing bytes of a partial block ignored", blocks.trailing)}, meta.Warnings...)
		}
	}
	if meta.Undecodable > 0 {
		meta.Warnings = append(meta.Warnings, fmt.Sprintf("%d of %d packets were not IPv4/IPv6 TCP or UDP (or were fragments) and were skipped", meta.Undecodable, meta.Packets))
	}
	return meta, nil
}

// readErr remembers the first error of r other than io.EOF: a capture
// whose reading fails is an error, not a capture cut short.
type readErr struct {
	r   io.Reader
	err error
}

func (e *readErr) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

// openCapture reads the file header. For pcapng, blocks is the checking
// reader under pcapgo's.
func openCapture(r io.Reader, meta *Meta) (packetSource, *ngBlocks, func(gopacket.CaptureInfo) layers.LinkType, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, err := br.Peek(4)
	if err != nil && err != io.EOF {
		return nil, nil, nil, fmt.Errorf("lab: reading capture: %w", err)
	}
	if len(magic) < 4 {
		return nil, nil, nil, &CaptureError{Format: "file", Offset: 0, Field: "magic", Err: ErrTruncated}
	}
	switch binary.LittleEndian.Uint32(magic) {
	case pcapngSHB:
		meta.Format = "pcapng"
		blocks, err := newNgBlocks(br)
		if err != nil {
			return nil, nil, nil, err
		}
		r, err := pcapgo.NewNgReader(blocks, pcapgo.NgReaderOptions{WantMixedLinkType: true})
		if err != nil {
			if err := blocks.drain(); err != nil {
				return nil, nil, nil, err
			}
			return nil, nil, nil, &CaptureError{Format: "pcapng", Field: "section header", Err: fmt.Errorf("%w: %v", ErrMalformed, err)}
		}
		meta.Comment = r.SectionInfo().Comment
		return r, blocks, func(ci gopacket.CaptureInfo) layers.LinkType {
			if len(ci.AncillaryData) > 0 {
				if lt, ok := ci.AncillaryData[0].(layers.LinkType); ok {
					return lt
				}
			}
			return r.LinkType()
		}, nil
	case 0xa1b2c3d4, 0xd4c3b2a1, 0xa1b23c4d, 0x4d3cb2a1:
		meta.Format = "pcap"
		if head, err := br.Peek(24); len(head) < 24 {
			if err != nil && err != io.EOF {
				return nil, nil, nil, fmt.Errorf("lab: reading capture: %w", err)
			}
			return nil, nil, nil, &CaptureError{Format: "pcap", Offset: 0, Field: "file header", Err: ErrTruncated}
		}
		r, err := pcapgo.NewReader(br)
		if err != nil {
			return nil, nil, nil, &CaptureError{Format: "pcap", Field: "file header", Err: fmt.Errorf("%w: %v", ErrMalformed, err)}
		}
		// Some writers put a wrong snaplen in the header; bound it instead.
		r.SetSnaplen(maxPacket)
		lt := r.LinkType()
		return r, nil, func(gopacket.CaptureInfo) layers.LinkType { return lt }, nil
	}
	return nil, nil, nil, ErrNotCapture
}

// checkBlockBody checks the fixed fields pcapgo trusts.
func checkBlockBody(order binary.ByteOrder, typ uint32, b []byte, off int) error {
	bad := func(field string) error {
		return &CaptureError{Format: "pcapng", Offset: int64(off), Field: field, Err: ErrMalformed}
	}
	switch typ {
	case pcapngSHB:
		if len(b) < 28 {
			return bad("section header block length")
		}
	case 1: // interface description
		if len(b) < 20 {
			return bad("interface description block length")
		}
	case pcapngEPB:
		if len(b) < 32 || int(order.Uint32(b[20:])) > len(b)-32 {
			return bad("enhanced packet captured_length")
		}
	case 2: // obsolete packet block
		if len(b) < 32 || int(order.Uint32(b[20:])) > len(b)-32 {
			return bad("packet block captured_length")
		}
	case 5: // interface statistics
		if len(b) < 24 {
			return bad("interface statistics block length")
		}
	case 3: // simple packet block
		if len(b) < 16 || int(order.Uint32(b[8:])) > len(b)-16 {
			return bad("simple packet original_length")
		}
	}
	if typ == pcapngSHB || typ == 1 || typ == 5 || typ == pcapngEPB {
		return checkOptions(order, typ, b, off)
	}
	return nil
}

// checkOptions makes sure the option list of a block stays inside it.
func checkOptions(order binary.ByteOrder, typ uint32, b []byte, off int) error {
	var start int
	switch typ {
	case pcapngSHB:
		start = 24
	case 1:
		start = 16
	case 5:
		start = 20
	case pcapngEPB:
		start = 28
		cl := int(order.Uint32(b[20:]))
		start += (cl + 3) &^ 3
	}
	end := len(b) - 4
	for o := start; o+4 <= end; {
		code, l := order.Uint16(b[o:]), int(order.Uint16(b[o+2:]))
		if code == 0 {
			return nil
		}
		if next := o + 4 + (l+3)&^3; next <= end {
			if field := badOption(typ, code, b[o+4:o+4+l]); field != "" {
				return &CaptureError{Format: "pcapng", Offset: int64(off + o), Field: field, Err: ErrMalformed}
			}
		}
		o += 4 + (l+3)&^3
		if o > end {
			return &CaptureError{Format: "pcapng", Offset: int64(off + o), Field: "option length", Err: ErrMalformed}
		}
	}
	return nil
}

// badOption names an interface description or statistics option whose
// value pcapgo would index past its end or divide by zero with (an
// if_tsresol of 2^-64 makes its time scale 0), or returns "".
func badOption(typ uint32, code uint16, v []byte) string {
	switch {
	case typ == 1 && code == 9: // if_tsresol: 10^-n or, with the top bit, 2^-n
		if len(v) < 1 || v[0]&0x80 != 0 && v[0]&0x7f > 63 || v[0]&0x80 == 0 && v[0] > 19 {
			return "if_tsresol"
		}
	case typ == 1 && code == 11 && len(v) < 1:
		return "if_filter"
	case typ == 1 && code == 14 && len(v) < 8:
		return "if_tsoffset"
	case typ == 5 && code >= 2 && code <= 5 && len(v) < 8: // isb_starttime, isb_endtime, isb_ifrecv, isb_ifdrop
		return "interface statistics option"
	}
	return ""
}

// DecodeLink strips the link layer named by lt and decodes IP and TCP/UDP.
func DecodeLink(lt layers.LinkType, b []byte) (*Packet, bool) {
	p := &Packet{}
	if !decodeLink(p, lt, b) {
		return nil, false
	}
	return p, true
}

// decodeLink is DecodeLink into p, which Read reuses for every packet: it
// sets every field but TS.
func decodeLink(p *Packet, lt layers.LinkType, b []byte) bool {
	*p = Packet{}
	switch lt {
	case layers.LinkTypeEthernet:
		if len(b) < 14 {
			return false
		}
		et, rest := binary.BigEndian.Uint16(b[12:]), b[14:]
		for (et == 0x8100 || et == 0x88a8) && len(rest) >= 4 {
			et, rest = binary.BigEndian.Uint16(rest[2:]), rest[4:]
		}
		return decodeEtherType(p, et, rest)
	case layers.LinkTypeLinuxSLL:
		if len(b) < 16 {
			return false
		}
		return decodeEtherType(p, binary.BigEndian.Uint16(b[14:]), b[16:])
	case 276 & 0xff: // LINKTYPE_LINUX_SLL2: gopacket keeps link types in a byte, so 276 reads as 20
		if len(b) < 20 {
			return false
		}
		return decodeEtherType(p, binary.BigEndian.Uint16(b[0:]), b[20:])
	case layers.LinkTypeRaw, 12, 14, 228, 229: // raw IP, IPv4, IPv6
		return decodeIP(p, b)
	case layers.LinkTypeNull, layers.LinkTypeLoop:
		if len(b) < 4 {
			return false
		}
		return decodeIP(p, b[4:])
	}
	return false
}

func decodeEtherType(p *Packet, et uint16, b []byte) bool {
	if et != 0x0800 && et != 0x86dd {
		return false
	}
	return decodeIP(p, b)
}

// decodeIP decodes an IPv4 or IPv6 packet with a TCP or UDP payload.
// Fragments are skipped.
func decodeIP(p *Packet, b []byte) bool {
	if len(b) < 1 {
		return false
	}
	var src, dst netip.Addr
	switch b[0] >> 4 {
	case 4:
		if len(b) < 20 {
			return false
		}
		ihl, total := int(b[0]&0x0f)*4, int(binary.BigEndian.Uint16(b[2:]))
		if ihl < 20 || total < ihl || len(b) < ihl {
			return false
		}
		if total <= len(b) {
			b = b[:total] // drop Ethernet padding
		}
		if frag := binary.BigEndian.Uint16(b[6:]); frag&0x3fff != 0 {
			return false
		}
		p.Proto = b[9]
		src, dst = netip.AddrFrom4([4]byte(b[12:16])), netip.AddrFrom4([4]byte(b[16:20]))
		b = b[ihl:]
	case 6:
		if len(b) < 40 {
			return false
		}
		plen := int(binary.BigEndian.Uint16(b[4:]))
		next := b[6]
		src, dst = netip.AddrFrom16([16]byte(b[8:24])), netip.AddrFrom16([16]byte(b[24:40]))
		b = b[40:]
		if plen <= len(b) {
			b = b[:plen]
		}
		for next == 0 || next == 43 || next == 60 {
			if len(b) < 8 || len(b) < 8+int(b[1])*8 {
				return false
			}
			next, b = b[0], b[8+int(b[1])*8:]
		}
		p.Proto = next
	default:
		return false
	}
	return decodeTransport(p, src, dst, b)
}

func decodeTransport(p *Packet, src, dst netip.Addr, b []byte) bool {
	switch p.Proto {
	case 6:
		if len(b) < 20 {
			return false
		}
		off := int(b[12]>>4) * 4
		if off < 20 || off > len(b) {
			return false
		}
		p.Seq, p.Ack, p.Flags = binary.BigEndian.Uint32(b[4:]), binary.BigEndian.Uint32(b[8:]), b[13]
		p.Payload = b[off:]
	case 17:
		if len(b) < 8 {
			return false
		}
		l := int(binary.BigEndian.Uint16(b[4:]))
		p.Payload = b[8:]
		if l >= 8 && l-8 <= len(p.Payload) {
			p.Payload = p.Payload[:l-8]
		}
	default:
		return false
	}
	p.Src = netip.AddrPortFrom(src.Unmap(), binary.BigEndian.Uint16(b[0:]))
	p.Dst = netip.AddrPortFrom(dst.Unmap(), binary.BigEndian.Uint16(b[2:]))
	return true
}
