package quicinitial

import (
	"fmt"
	"sort"
)

// Chunk is the data of one CRYPTO frame: Data at stream offset Off.
type Chunk struct {
	Off  uint64
	Data []byte
}

// ParseFrames collects the CRYPTO frames of a decrypted Initial payload;
// their Data points into b. Only the frames RFC 9000 §12.4 allows in an
// Initial packet are accepted: PADDING, PING, ACK, CRYPTO and
// CONNECTION_CLOSE (which ends the payload). On an error, the chunks read
// before it are returned with it.
func ParseFrames(b []byte) ([]Chunk, error) {
	var out []Chunk
	for len(b) > 0 {
		typ, n, ok := readVarint(b)
		if !ok {
			return out, fmt.Errorf("%w: frame type", ErrPacket)
		}
		b = b[n:]
		var err error
		switch {
		case typ == 0x00 || typ == 0x01: // PADDING, PING
		case typ == 0x02 || typ == 0x03: // ACK
			b, err = skipACK(b, typ == 0x03)
		case typ == 0x06: // CRYPTO
			var c Chunk
			c, b, err = cryptoFrame(b)
			if err == nil {
				out = append(out, c)
			}
		case typ == 0x1c || typ == 0x1d: // CONNECTION_CLOSE
			return out, nil
		default:
			err = fmt.Errorf("%w: frame type %#x is not allowed in Initial packets", ErrPacket, typ)
		}
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// skipACK skips an ACK frame's body (RFC 9000 §19.3), ECN counts too.
func skipACK(b []byte, ecn bool) ([]byte, error) {
	var count uint64
	for i := 0; i < 4; i++ { // largest, delay, range count, first range
		v, n, ok := readVarint(b)
		if !ok {
			return nil, fmt.Errorf("%w: ACK frame", ErrPacket)
		}
		if i == 2 {
			count = v
		}
		b = b[n:]
	}
	if count > uint64(len(b)) {
		return nil, fmt.Errorf("%w: ACK range count", ErrPacket)
	}
	extra := int(count) * 2
	if ecn {
		extra += 3
	}
	for i := 0; i < extra; i++ {
		_, n, ok := readVarint(b)
		if !ok {
			return nil, fmt.Errorf("%w: ACK ranges", ErrPacket)
		}
		b = b[n:]
	}
	return b, nil
}

// cryptoFrame reads a CRYPTO frame's body (RFC 9000 §19.6).
func cryptoFrame(b []byte) (Chunk, []byte, error) {
	off, n1, ok1 := readVarint(b)
	if !ok1 {
		return Chunk{}, nil, fmt.Errorf("%w: CRYPTO frame", ErrPacket)
	}
	l, n2, ok2 := readVarint(b[n1:])
	if !ok2 || uint64(len(b)-n1-n2) < l || off > 1<<32 {
		return Chunk{}, nil, fmt.Errorf("%w: CRYPTO frame", ErrPacket)
	}
	end := n1 + n2 + int(l)
	return Chunk{Off: off, Data: b[n1+n2 : end]}, b[end:], nil
}

// Assemble joins CRYPTO chunks from offset 0 up to the first hole, or up
// to limit bytes (it may return a little more: the chunk that crosses
// limit is kept whole). chunks is not modified.
func Assemble(chunks []Chunk, limit int) []byte {
	sorted := append([]Chunk(nil), chunks...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Off < sorted[j].Off })
	var out []byte
	for _, c := range sorted {
		end := c.Off + uint64(len(c.Data))
		if c.Off > uint64(len(out)) {
			break
		}
		if end > uint64(len(out)) {
			out = append(out, c.Data[uint64(len(out))-c.Off:]...)
		}
		if len(out) >= limit {
			break
		}
	}
	return out
}
