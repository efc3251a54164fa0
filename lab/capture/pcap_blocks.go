package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// pcapng block types (draft-ietf-opsawg-pcapng §4, Appendix A).
const (
	pcapngSHB = 0x0A0D0D0A // section header
	pcapngIDB = 1          // interface description
	pcapngOPB = 2          // packet (obsolete)
	pcapngSPB = 3          // simple packet
	pcapngEPB = 6          // enhanced packet
)

// maxBlock bounds a pcapng block: a packet of maxPacket bytes and its options.
const maxBlock = maxPacket + 1024

// ngBlocks walks a pcapng's block structure one block at a time, so that
// a corrupt length cannot make the reader allocate gigabytes or loop, while
// the file is read as a stream (one block in memory at a time). It checks
// each block's framing (both length fields, the byte order of every
// section); ngReader checks what is inside. A file cut inside its last
// block ends at the last whole block (trailing counts the bytes left over);
// a broken block stops the stream with a *CaptureError in err.
type ngBlocks struct {
	src      io.Reader
	order    binary.ByteOrder
	off      int64 // offset of the next block
	cur      int64 // offset of the block block() returned last
	buf      []byte
	err      error // io.EOF at the end of the whole blocks, or why reading stopped
	trailing int   // bytes of a partial last block
}

// newNgBlocks checks the section header's fixed start (the file has at
// least 28 bytes and a known byte order) before any block is read.
func newNgBlocks(src io.Reader) (*ngBlocks, error) {
	head := make([]byte, 28)
	if n, err := io.ReadFull(src, head); err != nil {
		if n < len(head) && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
			return nil, &CaptureError{Format: "pcapng", Offset: 0, Field: "section header block", Err: ErrTruncated}
		}
		return nil, fmt.Errorf("lab: reading capture: %w", err)
	}
	b := &ngBlocks{src: io.MultiReader(bytes.NewReader(head), src)}
	order, ok := byteOrder(head[8:])
	if !ok {
		return nil, &CaptureError{Format: "pcapng", Offset: 8, Field: "byte_order_magic", Err: ErrMalformed}
	}
	b.order = order
	return b, nil
}

// byteOrder reads a section header's byte-order magic.
func byteOrder(magic []byte) (binary.ByteOrder, bool) {
	switch binary.LittleEndian.Uint32(magic) {
	case 0x1A2B3C4D:
		return binary.LittleEndian, true
	case 0x4D3C2B1A:
		return binary.BigEndian, true
	}
	return nil, false
}

// block returns the next whole block, valid until the next call, or nil
// when the stream has stopped (err says why: io.EOF at its end).
func (b *ngBlocks) block() []byte {
	if b.err != nil {
		return nil
	}
	if cap(b.buf) < 12 {
		b.buf = make([]byte, 0, 4096)
	}
	hdr := b.buf[:12]
	n, err := io.ReadFull(b.src, hdr)
	if err != nil {
		b.stop(n, err)
		return nil
	}
	off := b.off
	typ := b.order.Uint32(hdr)
	if typ == pcapngSHB && off > 0 {
		order, ok := byteOrder(hdr[8:])
		if !ok {
			b.err = &CaptureError{Format: "pcapng", Offset: off + 8, Field: "byte_order_magic", Err: ErrMalformed}
			return nil
		}
		b.order = order
	}
	size := int(b.order.Uint32(hdr[4:]))
	if size < 12 || size%4 != 0 || size > maxBlock {
		b.err = &CaptureError{Format: "pcapng", Offset: off + 4, Field: "block_total_length", Err: ErrMalformed}
		return nil
	}
	if cap(b.buf) < size {
		b.buf = append(b.buf[:12], make([]byte, size-12)...)
	}
	block := b.buf[:size]
	if m, err := io.ReadFull(b.src, block[12:]); err != nil {
		if off == 0 && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
			b.err = &CaptureError{Format: "pcapng", Offset: 4, Field: "section header block", Err: ErrTruncated}
			return nil
		}
		b.stop(12+m, err)
		return nil
	}
	if b.order.Uint32(block[size-4:]) != uint32(size) {
		b.err = &CaptureError{Format: "pcapng", Offset: off + int64(size) - 4, Field: "trailing block_total_length", Err: ErrMalformed}
		return nil
	}
	b.cur, b.off = off, off+int64(size)
	return block
}

// failure is the *CaptureError or read error that stopped the stream, or
// nil at its end.
func (b *ngBlocks) failure() error {
	if b.err == io.EOF {
		return nil
	}
	return b.err
}

// stop ends the stream after a short read of n bytes: the end of the file
// (n bytes of a partial block left over) or a read error.
func (b *ngBlocks) stop(n int, err error) {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		b.trailing, b.err = n, io.EOF
		return
	}
	b.err = fmt.Errorf("lab: reading capture: %w", err)
}
