package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ngBlocks walks a pcapng's block structure one block at a time and hands
// pcapgo only whole blocks it has checked, so that a corrupt length cannot
// make the reader allocate gigabytes or loop, while the file is read as a
// stream (one block in memory at a time). A file cut inside its last block
// ends at the last whole block (trailing counts the bytes left over); a
// broken block stops the stream with a *CaptureError in err.
type ngBlocks struct {
	src      io.Reader
	order    binary.ByteOrder
	off      int64  // offset of the next block
	pending  []byte // the current checked block, not yet handed over
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
	switch binary.LittleEndian.Uint32(head[8:]) {
	case 0x1A2B3C4D:
		b.order = binary.LittleEndian
	case 0x4D3C2B1A:
		b.order = binary.BigEndian
	default:
		return nil, &CaptureError{Format: "pcapng", Offset: 8, Field: "byte_order_magic", Err: ErrMalformed}
	}
	return b, nil
}

// Read hands over the checked blocks' bytes.
func (b *ngBlocks) Read(p []byte) (int, error) {
	for len(b.pending) == 0 {
		if b.err != nil {
			return 0, b.err
		}
		b.next()
	}
	n := copy(p, b.pending)
	b.pending = b.pending[n:]
	return n, nil
}

// drain checks the rest of the file without handing it over: a broken block
// anywhere in the file is an error, as when the whole file is checked
// before reading.
func (b *ngBlocks) drain() error {
	b.pending = nil
	for b.err == nil {
		b.next()
		b.pending = nil
	}
	return b.failure()
}

// failure is the *CaptureError or read error that stopped the stream, or
// nil at its end.
func (b *ngBlocks) failure() error {
	if b.err == io.EOF {
		return nil
	}
	return b.err
}

// next reads and checks one block into pending, or sets err.
func (b *ngBlocks) next() {
	if cap(b.buf) < 12 {
		b.buf = make([]byte, 0, 4096)
	}
	hdr := b.buf[:12]
	n, err := io.ReadFull(b.src, hdr)
	if err != nil {
		b.stop(n, err)
		return
	}
	off := b.off
	typ := b.order.Uint32(hdr)
	if typ == pcapngSHB && off > 0 {
		switch binary.LittleEndian.Uint32(hdr[8:]) {
		case 0x1A2B3C4D:
			b.order = binary.LittleEndian
		case 0x4D3C2B1A:
			b.order = binary.BigEndian
		default:
			b.err = &CaptureError{Format: "pcapng", Offset: off + 8, Field: "byte_order_magic", Err: ErrMalformed}
			return
		}
	}
	size := int(b.order.Uint32(hdr[4:]))
	if size < 12 || size%4 != 0 || size > maxPacket+1024 {
		b.err = &CaptureError{Format: "pcapng", Offset: off + 4, Field: "block_total_length", Err: ErrMalformed}
		return
	}
	if cap(b.buf) < size {
		b.buf = append(b.buf[:12], make([]byte, size-12)...)
	}
	block := b.buf[:size]
	if m, err := io.ReadFull(b.src, block[12:]); err != nil {
		if off == 0 && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
			b.err = &CaptureError{Format: "pcapng", Offset: 4, Field: "section header block", Err: ErrTruncated}
			return
		}
		b.stop(12+m, err)
		return
	}
	if b.order.Uint32(block[size-4:]) != uint32(size) {
		b.err = &CaptureError{Format: "pcapng", Offset: off + int64(size) - 4, Field: "trailing block_total_length", Err: ErrMalformed}
		return
	}
	if err := checkBlockBody(b.order, typ, block, int(off)); err != nil {
		b.err = err
		return
	}
	if typ == 1 && b.order.Uint32(block[12:]) > maxPacket+1024 {
		// pcapgo sizes its packet buffer by the interface's snaplen; no
		// packet block can be longer than maxPacket+1024, so a larger
		// snaplen changes nothing else and is bounded here.
		b.order.PutUint32(block[12:], maxPacket+1024)
	}
	b.off += int64(size)
	b.pending = block
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
