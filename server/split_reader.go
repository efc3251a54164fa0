package server

import (
	"errors"
	"fmt"
	"io"

	"github.com/echlab/echlab/ech"
)

// TLS record framing the split relay reads.
const (
	recordHeaderLen  = 5
	recordCCS        = 20
	recordHandshake  = 22
	maxRecordPayload = 1<<14 + 256 // TLSPlaintext limit plus slack for a ciphertext-sized fragment
)

// DefaultMaxHello bounds the records of one ClientHello the split relay
// buffers (SplitConfig.MaxHello).
const DefaultMaxHello = 64 << 10

// flight is one handshake message read record by record: the leading
// change_cipher_spec records (sent for middlebox compatibility before a
// second ClientHello), the handshake records that carry the message, and
// the message itself (4-byte header included).
type flight struct {
	pre     []byte
	records []byte
	msg     []byte
}

// readFlight reads whole TLS records from r, never more, until the first
// handshake message is complete, and at most limit bytes. Anything that is
// not a plaintext handshake stream (bad record header, alert, oversized or
// truncated input) is an error wrapping ErrClientHello; it never panics
// (FuzzSplitReader).
func readFlight(r io.Reader, limit int) (*flight, error) {
	f := &flight{}
	var hdr [recordHeaderLen]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return nil, helloErr("record header", err)
		}
		typ, n := hdr[0], int(hdr[3])<<8|int(hdr[4])
		if hdr[1] != 3 || n == 0 || n > maxRecordPayload {
			return nil, helloErr("record header", fmt.Errorf("type %d version %#02x%02x length %d", typ, hdr[1], hdr[2], n))
		}
		if len(f.pre)+len(f.records)+recordHeaderLen+n > limit {
			return nil, helloErr("size", fmt.Errorf("more than %d bytes", limit))
		}
		rec := make([]byte, recordHeaderLen+n)
		copy(rec, hdr[:])
		if _, err := io.ReadFull(r, rec[recordHeaderLen:]); err != nil {
			return nil, helloErr("record body", err)
		}
		if typ == recordCCS && len(f.records) == 0 {
			f.pre = append(f.pre, rec...)
			continue
		}
		if typ != recordHandshake {
			return nil, helloErr("record type", fmt.Errorf("content type %d", typ))
		}
		f.records = append(f.records, rec...)
		msg, used, err := ech.HandshakeFromRecords(f.records)
		switch {
		case err == nil && used == len(f.records):
			f.msg = msg
			return f, nil
		case err == nil:
			return nil, helloErr("records", errors.New("data after the handshake message"))
		case !errors.Is(err, ech.ErrNeedMore):
			return nil, helloErr("records", err)
		}
	}
}

func helloErr(what string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		err = fmt.Errorf("truncated: %w", err)
	}
	return fmt.Errorf("%w: %s: %w", ErrClientHello, what, err)
}

// raw returns every byte of the flight as read.
func (f *flight) raw() []byte {
	return append(append([]byte(nil), f.pre...), f.records...)
}
