package quicinitial

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
)

// Limits of a Hello: what one client may make it keep and read.
const (
	// MaxHelloBytes bounds the CRYPTO bytes kept, in order and out of
	// order, and so the ClientHello it can return.
	MaxHelloBytes = 64 << 10
	// MaxHelloDatagrams bounds the datagrams it reads.
	MaxHelloDatagrams = 16
	// MaxHelloChunks bounds the out-of-order CRYPTO frames kept.
	MaxHelloChunks = 256
	// randomEnd is where the random ends in a ClientHello message: type,
	// 3-byte length, legacy_version, 32-byte random.
	randomEnd = 4 + 2 + 32
)

// Hello follows the Initial packets one QUIC client sends and gives the
// ClientHello once its CRYPTO frames hold the whole message, and its
// random as soon as they hold the first 38 bytes. The Initial keys derive
// from the Destination Connection ID of the client's first Initial
// (RFC 9001 §5.2; QUIC v1 and v2); an Initial under another DCID that does
// not open with the current keys (after a Retry, or a new connection from
// the same address) starts over with its own keys. Coalesced packets are
// read, a ClientHello may span several packets and datagrams, in any
// order. Memory is bounded: at most MaxHelloBytes of CRYPTO data and
// MaxHelloDatagrams datagrams. The zero value is ready to use; a Hello is
// not safe for concurrent use.
type Hello struct {
	keys      *Keys
	keyDCID   []byte
	version   uint32
	largest   int64
	crypto    []byte  // CRYPTO data from offset 0 without a hole
	pending   []Chunk // CRYPTO data past a hole
	datagrams int
	hello     []byte // the whole ClientHello, once read
	err       error  // why it gave up (wraps ErrGaveUp)
}

// Add reads one datagram the client sent. It returns the ClientHello
// handshake message (its 4-byte header included) and ok once the CRYPTO
// frames read so far hold all of it; later calls return it again and read
// nothing. An error wrapping ErrGaveUp is final: every later call returns
// it. Other errors (wrapping ErrPacket) say why a packet of this datagram
// could not be read; later datagrams may still complete the message. Add
// neither keeps nor modifies datagram; the returned message is the
// Hello's and must not be modified.
func (q *Hello) Add(datagram []byte) (clientHello []byte, ok bool, err error) {
	switch {
	case q.hello != nil:
		return q.hello, true, nil
	case q.err != nil:
		return nil, false, q.err
	case q.datagrams >= MaxHelloDatagrams:
		return nil, false, q.giveUp("no whole ClientHello in %d datagrams", q.datagrams)
	}
	q.datagrams++
	chunks, errs := q.readDatagram(datagram)
	if err := q.addCrypto(chunks); err != nil {
		return nil, false, err
	}
	if msg, err := q.message(); msg != nil || err != nil {
		return msg, msg != nil, err
	}
	return nil, false, errors.Join(errs...)
}

// readDatagram opens the client Initials of one datagram and returns their
// CRYPTO frames, and why packets could not be read.
func (q *Hello) readDatagram(datagram []byte) ([]Chunk, []error) {
	var errs []error
	var chunks []Chunk
	for b := datagram; len(b) > 0; {
		if b[0]&0x80 == 0 {
			if len(b) == len(datagram) {
				errs = append(errs, fmt.Errorf("%w: not a long header", ErrPacket))
			}
			break // a short-header packet ends the datagram
		}
		h, err := ParseHeader(b)
		if err != nil {
			errs = append(errs, err)
			break
		}
		pkt := b[:h.End]
		b = b[h.End:]
		if h.Initial {
			c, rekeyed, err := q.open(h, pkt)
			if rekeyed {
				chunks = nil // frames under the old keys belong to another attempt
			}
			chunks = append(chunks, c...)
			errs = append(errs, err)
		}
	}
	return chunks, errs
}

// Version is the QUIC version of the Initials read (V1 or V2), 0 before
// any.
func (q *Hello) Version() uint32 { return q.version }

// Random returns the ClientHello's 32-byte random once the CRYPTO frames
// read so far hold the start of the message up to it, else nil. The
// returned slice is a copy.
func (q *Hello) Random() []byte {
	b := q.hello
	if b == nil {
		b = q.crypto
	}
	if len(b) < randomEnd || b[0] != 1 {
		return nil
	}
	return slices.Clone(b[randomEnd-32 : randomEnd])
}

// open decrypts one client Initial and returns its CRYPTO frames (their
// data is the decrypted packet's, not the datagram's); rekeyed says the
// packet started over under keys of its own DCID.
func (q *Hello) open(h *Header, pkt []byte) (chunks []Chunk, rekeyed bool, err error) {
	if q.keys != nil {
		pn, plain, err := q.keys.Open(pkt, h, q.largest)
		if err == nil {
			q.largest = max(q.largest, pn)
			chunks, err = ParseFrames(plain)
			return chunks, false, err
		}
		if bytes.Equal(h.DCID, q.keyDCID) {
			return nil, false, err
		}
	}
	// The first Initial, or one under a new DCID: its own keys.
	cs, _ := Secrets(h.Version, h.DCID)
	k := NewKeys(h.Version, cs)
	pn, plain, err := k.Open(pkt, h, -1)
	if err != nil {
		return nil, false, err
	}
	*q = Hello{keys: k, keyDCID: slices.Clone(h.DCID), version: h.Version, largest: pn, datagrams: q.datagrams}
	chunks, err = ParseFrames(plain)
	return chunks, true, err
}

// addCrypto adds CRYPTO frames: data already held is skipped, the rest
// joins the in-order bytes (Assemble) or waits past a hole.
func (q *Hello) addCrypto(chunks []Chunk) error {
	added := false
	for _, c := range chunks {
		end := c.Off + uint64(len(c.Data))
		switch {
		case end <= uint64(len(q.crypto)):
			continue // already held (a retransmission), or empty
		case end > MaxHelloBytes:
			return q.giveUp("CRYPTO data up to offset %d, past %d bytes", end, MaxHelloBytes)
		}
		// Keep the CRYPTO bytes, not the decrypted packet they point into.
		q.pending = append(q.pending, Chunk{Off: c.Off, Data: slices.Clone(c.Data)})
		added = true
	}
	if !added {
		return nil
	}
	q.crypto = Assemble(append([]Chunk{{Off: 0, Data: q.crypto}}, q.pending...), MaxHelloBytes)
	held := uint64(len(q.crypto))
	q.pending = slices.DeleteFunc(q.pending, func(c Chunk) bool { return c.Off+uint64(len(c.Data)) <= held })
	size := len(q.crypto)
	for _, c := range q.pending {
		size += len(c.Data)
	}
	if size > MaxHelloBytes || len(q.pending) > MaxHelloChunks {
		return q.giveUp("%d CRYPTO bytes in %d pieces past a hole", size, len(q.pending))
	}
	return nil
}

// message returns the ClientHello once the in-order bytes hold it.
func (q *Hello) message() ([]byte, error) {
	if len(q.crypto) < 4 {
		return nil, nil
	}
	if q.crypto[0] != 1 {
		return nil, q.giveUp("the client's first handshake message is of type %d, not a ClientHello", q.crypto[0])
	}
	n := 4 + (int(q.crypto[1])<<16 | int(q.crypto[2])<<8 | int(q.crypto[3]))
	switch {
	case n > MaxHelloBytes:
		return nil, q.giveUp("a ClientHello of %d bytes, past %d", n, MaxHelloBytes)
	case len(q.crypto) < n:
		return nil, nil
	}
	q.hello, q.crypto, q.pending, q.keys = q.crypto[:n:n], nil, nil, nil
	return q.hello, nil
}

// giveUp makes the Hello stop reading, for the reason given.
func (q *Hello) giveUp(format string, args ...any) error {
	q.err = fmt.Errorf("%w: "+format, append([]any{ErrGaveUp}, args...)...)
	q.crypto, q.pending, q.keys = nil, nil, nil
	return q.err
}
