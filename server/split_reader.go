package server

import (
	"errors"
	"fmt"
	"io"
)

// TLS record framing the split relay reads.
const (
	recordHeaderLen  = 5
	recordCCS        = 20
	recordAlert      = 21
	recordHandshake  = 22
	maxRecordPayload = 1 << 14 // TLSPlaintext.length limit (RFC 8446 §5.1)
)

// DefaultMaxHello bounds the records of one ClientHello the split relay
// buffers (SplitConfig.MaxHello).
const DefaultMaxHello = 64 << 10

// DefaultMaxHelloRecords bounds how many handshake records may carry one
// ClientHello (SplitConfig.MaxHelloRecords). crypto/tls, Chromium and
// Firefox send a ClientHello in one record (two only past 16 KiB);
// fragmenting tools that split it to dodge middleboxes use a handful. A
// client cutting it into more, such as one-byte records, is refused with
// a decode_error alert.
const DefaultMaxHelloRecords = 64

// errPeerAlert reports that the client sent an alert instead of a
// ClientHello: the relay closes without answering.
var errPeerAlert = errors.New("peer sent an alert")

// errNotHandshake reports a record that is neither handshake nor a
// leading change_cipher_spec.
var errNotHandshake = errors.New("not a handshake record")

// flight is one handshake message read record by record: the leading
// change_cipher_spec records (sent for middlebox compatibility before a
// second ClientHello), the handshake records that carry the message, and
// the message itself (4-byte header included).
type flight struct {
	pre     []byte
	records []byte
	msg     []byte
}

// readFlight is readFlightMax with DefaultMaxHelloRecords.
func readFlight(r io.Reader, limit int) (*flight, error) {
	return readFlightMax(r, limit, DefaultMaxHelloRecords)
}

// readFlightMax reads whole TLS records from r, never more, until the
// first handshake message is complete, and at most limit bytes in at most
// maxRecords handshake records. Each record's payload is appended once to
// the message and completeness is read from its 4-byte header, so the
// cost is linear in the bytes read. Anything that is not a plaintext
// handshake stream (bad record header, alert, oversized or truncated
// input) is an error wrapping ErrClientHello; it never panics
// (FuzzSplitReader).
func readFlightMax(r io.Reader, limit, maxRecords int) (*flight, error) {
	f := &flight{}
	var hdr [recordHeaderLen]byte
	for n := 0; ; {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return nil, helloErr("record header", err)
		}
		typ, size := hdr[0], int(hdr[3])<<8|int(hdr[4])
		if hdr[1] != 3 || size == 0 || size > maxRecordPayload {
			return nil, helloErr("record header", fmt.Errorf("type %d version %#02x%02x length %d", typ, hdr[1], hdr[2], size))
		}
		if len(f.pre)+len(f.records)+recordHeaderLen+size > limit {
			return nil, helloErr("size", fmt.Errorf("more than %d bytes", limit))
		}
		rec := make([]byte, recordHeaderLen+size)
		copy(rec, hdr[:])
		if _, err := io.ReadFull(r, rec[recordHeaderLen:]); err != nil {
			return nil, helloErr("record body", err)
		}
		switch {
		case typ == recordCCS && len(f.records) == 0:
			f.pre = append(f.pre, rec...)
			continue
		case typ == recordAlert:
			return nil, helloErr("record type", errPeerAlert)
		case typ != recordHandshake:
			return nil, helloErr("record type", fmt.Errorf("%w: content type %d", errNotHandshake, typ))
		}
		if n++; n > maxRecords {
			return nil, helloErr("records", fmt.Errorf("more than %d records for one message", maxRecords))
		}
		f.records = append(f.records, rec...)
		f.msg = append(f.msg, rec[recordHeaderLen:]...)
		switch done, err := f.complete(); {
		case err != nil:
			return nil, err
		case done:
			return f, nil
		}
	}
}

// complete reports whether the assembled message is whole; bytes beyond
// it in the same records are an error.
func (f *flight) complete() (bool, error) {
	if len(f.msg) < 4 {
		return false, nil
	}
	total := 4 + (int(f.msg[1])<<16 | int(f.msg[2])<<8 | int(f.msg[3]))
	switch {
	case len(f.msg) < total:
		return false, nil
	case len(f.msg) > total:
		return false, helloErr("records", errors.New("data after the handshake message"))
	}
	return true, nil
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
