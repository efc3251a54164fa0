package capture

import (
	"bufio"
	"encoding/binary"
	"io"
	"time"
)

// Classic pcap magic numbers, as read little-endian: microsecond or
// nanosecond timestamps, written little- or big-endian.
const (
	pcapMicro   = 0xa1b2c3d4
	pcapMicroBE = 0xd4c3b2a1
	pcapNano    = 0xa1b23c4d
	pcapNanoBE  = 0x4d3cb2a1
)

// pcapReader reads a classic pcap (draft-ietf-opsawg-pcap): a 24-byte
// file header, then 16-byte record headers each followed by its packet.
type pcapReader struct {
	br     *bufio.Reader
	order  binary.ByteOrder
	nsPer  int64 // nanoseconds per unit of the fraction field
	link   LinkType
	off    int64 // offset of the next record
	hdr    [16]byte
	packet []byte // for packets larger than br's buffer
}

// openPcap reads the file header. Its snaplen is not trusted (some writers
// put a wrong one there): packets are bounded by maxPacket instead.
func openPcap(br *bufio.Reader) (*pcapReader, error) {
	head, err := br.Peek(24)
	if len(head) < 24 {
		if err != nil && err != io.EOF {
			return nil, err
		}
		return nil, &CaptureError{Format: "pcap", Offset: 0, Field: "file header", Err: ErrTruncated}
	}
	r := &pcapReader{br: br, order: binary.LittleEndian, nsPer: 1000, off: 24}
	switch binary.LittleEndian.Uint32(head) {
	case pcapMicroBE:
		r.order = binary.BigEndian
	case pcapNano:
		r.nsPer = 1
	case pcapNanoBE:
		r.order, r.nsPer = binary.BigEndian, 1
	}
	if r.order.Uint16(head[4:]) != 2 {
		return nil, &CaptureError{Format: "pcap", Offset: 4, Field: "major_version", Err: ErrMalformed}
	}
	// The link type is the low 16 bits; the FCS length may sit in the top four.
	r.link = LinkType(r.order.Uint32(head[20:]))
	br.Discard(24)
	return r, nil
}

func (r *pcapReader) next(rec *record) error {
	n, err := io.ReadFull(r.br, r.hdr[:])
	if err != nil {
		if n == 0 && err == io.EOF {
			return io.EOF
		}
		return io.ErrUnexpectedEOF // or a read error, which Read reports
	}
	sec, frac := r.order.Uint32(r.hdr[0:]), r.order.Uint32(r.hdr[4:])
	caplen, origlen := r.order.Uint32(r.hdr[8:]), r.order.Uint32(r.hdr[12:])
	if caplen > maxPacket || caplen > origlen {
		return &CaptureError{Format: "pcap", Offset: r.off + 8, Field: "incl_len", Err: ErrMalformed}
	}
	if rec.data, err = r.read(int(caplen)); err != nil {
		return io.ErrUnexpectedEOF
	}
	r.off += 16 + int64(caplen)
	rec.ticks = uint64(sec)<<32 | uint64(frac)
	rec.ts = time.Unix(int64(sec), int64(frac)*r.nsPer).UTC()
	rec.link, rec.iface = r.link, nil
	return nil
}

// read returns the next n bytes, in place in br's buffer when they fit
// there (valid until the next read), else in r.packet.
func (r *pcapReader) read(n int) ([]byte, error) {
	if n <= r.br.Size() {
		b, err := r.br.Peek(n)
		if err != nil {
			return nil, err
		}
		// Discarding what is buffered moves no bytes: b stays valid.
		r.br.Discard(n)
		return b, nil
	}
	if cap(r.packet) < n {
		r.packet = make([]byte, n)
	}
	b := r.packet[:n]
	_, err := io.ReadFull(r.br, b)
	return b, err
}
