package capture

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"time"
)

// record is one packet as a capture reader found it. data points into the
// reader's buffer and is only valid until the next call.
type record struct {
	data []byte
	ts   time.Time
	link LinkType
	// ticks is the timestamp as stored: pcapng units of iface's resolution,
	// or a classic pcap's seconds<<32 | fraction.
	ticks uint64
	iface *ngIface // pcapng: the packet's interface; nil for classic pcap
}

// packetSource reads a capture's packets one at a time, reusing one buffer.
type packetSource interface {
	// next reads the next packet into rec. It returns io.EOF at the end,
	// io.ErrUnexpectedEOF when the file stops inside a packet, or why
	// the capture cannot be read further.
	next(rec *record) error
}

// openCapture reads the file header and returns the reader of its format.
func openCapture(r io.Reader, meta *Meta) (packetSource, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, err := br.Peek(4)
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("lab: reading capture: %w", err)
	}
	if len(magic) < 4 {
		return nil, &CaptureError{Format: "file", Offset: 0, Field: "magic", Err: ErrTruncated}
	}
	switch binary.LittleEndian.Uint32(magic) {
	case pcapngSHB:
		meta.Format = "pcapng"
		ng, err := openNg(br)
		if err != nil {
			return nil, err
		}
		meta.Comment = ng.comment
		return ng, nil
	case pcapMicro, pcapMicroBE, pcapNano, pcapNanoBE:
		meta.Format = "pcap"
		return openPcap(br)
	}
	return nil, ErrNotCapture
}

// maxInterfaces bounds the interface descriptions of one pcapng section,
// which the reader keeps (a packet names its interface by index).
const maxInterfaces = 1 << 16

// ngReader reads a pcapng's packets (enhanced, simple and obsolete packet
// blocks) with the link type and timestamp resolution of their interface,
// section after section, in either byte order; it skips other blocks.
type ngReader struct {
	blocks  *ngBlocks
	ifaces  []ngIface // of the current section
	comment string    // the first section's opt_comment
}

// openNg reads the first section header.
func openNg(br io.Reader) (*ngReader, error) {
	blocks, err := newNgBlocks(br)
	if err != nil {
		return nil, err
	}
	r := &ngReader{blocks: blocks}
	blk := blocks.block()
	if blk == nil {
		if err := blocks.failure(); err != nil {
			return nil, err
		}
		return nil, &CaptureError{Format: "pcapng", Offset: 0, Field: "section header block", Err: ErrTruncated}
	}
	if err := r.section(blk, true); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *ngReader) next(rec *record) error {
	for {
		blk := r.blocks.block()
		if blk == nil {
			return r.blocks.err
		}
		var err error
		switch r.blocks.order.Uint32(blk) {
		case pcapngSHB:
			err = r.section(blk, false)
		case pcapngIDB:
			err = r.iface(blk)
		case pcapngEPB, pcapngOPB:
			return r.packet(blk, rec)
		case pcapngSPB:
			return r.simple(blk, rec)
		}
		if err != nil {
			return err
		}
	}
}

// bad is a malformed-capture error at offset at inside the current block.
func (r *ngReader) bad(at int, field string) error {
	return &CaptureError{Format: "pcapng", Offset: r.blocks.cur + int64(at), Field: field, Err: ErrMalformed}
}

// section starts a section: its interfaces are its own. The first
// section's comment is the capture's.
func (r *ngReader) section(blk []byte, first bool) error {
	if len(blk) < 28 {
		return r.bad(4, "section header block length")
	}
	if r.blocks.order.Uint16(blk[12:]) != 1 {
		return r.bad(12, "major_version")
	}
	r.ifaces = r.ifaces[:0]
	return r.options(blk, 24, func(code uint16, v []byte) string {
		if first && code == 1 { // opt_comment
			r.comment = string(v)
		}
		return ""
	})
}

// packet reads an enhanced or obsolete packet block: the same layout but
// for a 16-bit interface ID (and a drops count) in the obsolete one.
func (r *ngReader) packet(blk []byte, rec *record) error {
	order := r.blocks.order
	if len(blk) < 32 {
		return r.bad(4, "packet block length")
	}
	id := order.Uint32(blk[8:])
	if order.Uint32(blk) == pcapngOPB {
		id = uint32(order.Uint16(blk[8:]))
	}
	if id >= uint32(len(r.ifaces)) {
		return r.bad(8, "interface_id")
	}
	caplen := order.Uint32(blk[20:])
	if caplen > uint32(len(blk)-32) {
		return r.bad(20, "captured_length")
	}
	iface := &r.ifaces[id]
	rec.data = blk[28 : 28+caplen]
	rec.ticks = uint64(order.Uint32(blk[12:]))<<32 | uint64(order.Uint32(blk[16:]))
	rec.iface, rec.link, rec.ts = iface, iface.link, iface.time(rec.ticks)
	return nil
}

// simple reads a simple packet block: it belongs to the section's first
// interface, holds min(original length, snaplen) bytes and has no
// timestamp (rec.ts is the zero time).
func (r *ngReader) simple(blk []byte, rec *record) error {
	if len(blk) < 16 {
		return r.bad(4, "simple packet block length")
	}
	if len(r.ifaces) == 0 {
		return r.bad(0, "interface_id")
	}
	iface := &r.ifaces[0]
	caplen := r.blocks.order.Uint32(blk[8:])
	if iface.snaplen != 0 {
		caplen = min(caplen, iface.snaplen)
	}
	if caplen > uint32(len(blk)-16) {
		return r.bad(8, "original_packet_length")
	}
	rec.data = blk[12 : 12+caplen]
	rec.iface, rec.link, rec.ticks, rec.ts = iface, iface.link, 0, time.Time{}
	return nil
}

// options calls fn on each option of the block's list, which starts at
// start and ends before the trailing length or at opt_endofopt. An option
// running past the list, or one fn names (it returns the field), is an
// error.
func (r *ngReader) options(blk []byte, start int, fn func(code uint16, v []byte) string) error {
	order, end := r.blocks.order, len(blk)-4
	for o := start; o+4 <= end; {
		code, l := order.Uint16(blk[o:]), int(order.Uint16(blk[o+2:]))
		if code == 0 { // opt_endofopt
			return nil
		}
		next := o + 4 + (l+3)&^3
		if next > end {
			return r.bad(o, "option length")
		}
		if field := fn(code, blk[o+4:o+4+l]); field != "" {
			return r.bad(o, field)
		}
		o = next
	}
	return nil
}
