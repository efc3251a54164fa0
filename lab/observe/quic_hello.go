package observe

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
)

// Limits of a QUICHello: what one client may make it keep and read.
const (
	// MaxQUICHelloBytes bounds the CRYPTO bytes kept, in order and out of
	// order, and so the ClientHello it can return.
	MaxQUICHelloBytes = 64 << 10
	// MaxQUICHelloDatagrams bounds the datagrams it reads.
	MaxQUICHelloDatagrams = 16
	// maxQUICHelloChunks bounds the out-of-order CRYPTO frames kept.
	maxQUICHelloChunks = 256
)

// ErrQUICHelloGaveUp reports that a QUICHello stopped reading for good: a
// limit was reached, or the client's CRYPTO stream does not start with a
// ClientHello.
var ErrQUICHelloGaveUp = errors.New("lab: QUIC ClientHello not read")

// QUICHello follows the Initial packets one QUIC client sends, as an
// on-path middlebox sees them, and gives the ClientHello once its CRYPTO
// frames hold the whole message. The Initial keys derive from the
// Destination Connection ID of the client's first Initial (RFC 9001 §5.2;
// QUIC v1 and v2); an Initial under another DCID that does not open with
// the current keys (after a Retry, or a new connection from the same
// address) starts over with its own keys. Coalesced packets are read, a
// ClientHello may span several packets and datagrams, in any order.
// Memory is bounded: at most MaxQUICHelloBytes of CRYPTO data and
// MaxQUICHelloDatagrams datagrams. The zero value is ready to use; a
// QUICHello is not safe for concurrent use.
type QUICHello struct {
	keys      *initialKeys
	keyDCID   []byte
	version   uint32
	largest   int64
	crypto    []byte        // CRYPTO data from offset 0 without a hole
	pending   []cryptoChunk // CRYPTO data past a hole
	datagrams int
	hello     []byte // the whole ClientHello, once read
	err       error  // why it gave up (wraps ErrQUICHelloGaveUp)
}

// Add reads one datagram the client sent. It returns the ClientHello
// handshake message (its 4-byte header included) and ok once the CRYPTO
// frames read so far hold all of it; later calls return it again and read
// nothing. An error wrapping ErrQUICHelloGaveUp is final: every later call
// returns it. Other errors (wrapping ErrQUIC) say why a packet of this
// datagram could not be read; later datagrams may still complete the
// message. Add neither keeps nor modifies datagram; the returned message
// is the QUICHello's and must not be modified.
func (q *QUICHello) Add(datagram []byte) (clientHello []byte, ok bool, err error) {
	switch {
	case q.hello != nil:
		return q.hello, true, nil
	case q.err != nil:
		return nil, false, q.err
	case q.datagrams >= MaxQUICHelloDatagrams:
		return nil, false, q.giveUp("no whole ClientHello in %d datagrams", q.datagrams)
	}
	q.datagrams++
	var errs []error
	var chunks []cryptoChunk
	for b := datagram; len(b) > 0; {
		if b[0]&0x80 == 0 {
			if len(b) == len(datagram) {
				errs = append(errs, fmt.Errorf("%w: not a long header", ErrQUIC))
			}
			break // a short-header packet ends the datagram
		}
		h, err := parseLongHeader(b)
		if err != nil {
			errs = append(errs, err)
			break
		}
		pkt := b[:h.end]
		b = b[h.end:]
		if h.initial {
			c, rekeyed, err := q.open(h, pkt)
			if rekeyed {
				chunks = nil // frames under the old keys belong to another attempt
			}
			chunks = append(chunks, c...)
			errs = append(errs, err)
		}
	}
	if err := q.addCrypto(chunks); err != nil {
		return nil, false, err
	}
	if msg, err := q.message(); msg != nil || err != nil {
		return msg, msg != nil, err
	}
	return nil, false, errors.Join(errs...)
}

// Version is the QUIC version of the Initials read (QUICv1 or QUICv2), 0
// before any.
func (q *QUICHello) Version() uint32 { return q.version }

// open decrypts one client Initial and returns its CRYPTO frames (their
// data is the decrypted packet's, not the datagram's); rekeyed says the
// packet started over under keys of its own DCID.
func (q *QUICHello) open(h *longHeader, pkt []byte) (chunks []cryptoChunk, rekeyed bool, err error) {
	if q.keys != nil {
		pn, plain, err := q.keys.unprotect(pkt, h, q.largest)
		if err == nil {
			q.largest = max(q.largest, pn)
			chunks, err = parseInitialFrames(plain)
			return chunks, false, err
		}
		if bytes.Equal(h.dcid, q.keyDCID) {
			return nil, false, err
		}
	}
	// The first Initial, or one under a new DCID: its own keys.
	cs, _ := initialSecrets(h.version, h.dcid)
	k := newInitialKeys(h.version, cs)
	pn, plain, err := k.unprotect(pkt, h, -1)
	if err != nil {
		return nil, false, err
	}
	*q = QUICHello{keys: k, keyDCID: slices.Clone(h.dcid), version: h.version, largest: pn, datagrams: q.datagrams}
	chunks, err = parseInitialFrames(plain)
	return chunks, true, err
}

// addCrypto adds CRYPTO frames: data already held is skipped, the rest
// joins the in-order bytes (assembleCrypto) or waits past a hole.
func (q *QUICHello) addCrypto(chunks []cryptoChunk) error {
	added := false
	for _, c := range chunks {
		end := c.off + uint64(len(c.data))
		switch {
		case end <= uint64(len(q.crypto)):
			continue // already held (a retransmission), or empty
		case end > MaxQUICHelloBytes:
			return q.giveUp("CRYPTO data up to offset %d, past %d bytes", end, MaxQUICHelloBytes)
		}
		// Keep the CRYPTO bytes, not the decrypted packet they point into.
		q.pending = append(q.pending, cryptoChunk{off: c.off, data: slices.Clone(c.data)})
		added = true
	}
	if !added {
		return nil
	}
	q.crypto = assembleCrypto(append([]cryptoChunk{{off: 0, data: q.crypto}}, q.pending...))
	held := uint64(len(q.crypto))
	q.pending = slices.DeleteFunc(q.pending, func(c cryptoChunk) bool { return c.off+uint64(len(c.data)) <= held })
	size := len(q.crypto)
	for _, c := range q.pending {
		size += len(c.data)
	}
	if size > MaxQUICHelloBytes || len(q.pending) > maxQUICHelloChunks {
		return q.giveUp("%d CRYPTO bytes in %d pieces past a hole", size, len(q.pending))
	}
	return nil
}

// message returns the ClientHello once the in-order bytes hold it.
func (q *QUICHello) message() ([]byte, error) {
	if len(q.crypto) < 4 {
		return nil, nil
	}
	if q.crypto[0] != 1 {
		return nil, q.giveUp("the client's first handshake message is of type %d, not a ClientHello", q.crypto[0])
	}
	n := 4 + (int(q.crypto[1])<<16 | int(q.crypto[2])<<8 | int(q.crypto[3]))
	switch {
	case n > MaxQUICHelloBytes:
		return nil, q.giveUp("a ClientHello of %d bytes, past %d", n, MaxQUICHelloBytes)
	case len(q.crypto) < n:
		return nil, nil
	}
	q.hello, q.crypto, q.pending, q.keys = q.crypto[:n:n], nil, nil, nil
	return q.hello, nil
}

// giveUp makes the QUICHello stop reading, for the reason given.
func (q *QUICHello) giveUp(format string, args ...any) error {
	q.err = fmt.Errorf("%w: "+format, append([]any{ErrQUICHelloGaveUp}, args...)...)
	q.crypto, q.pending, q.keys = nil, nil, nil
	return q.err
}
