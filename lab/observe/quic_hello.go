package observe

import (
	"github.com/echlab/echlab/internal/quicinitial"
)

// Limits of a QUICHello: what one client may make it keep and read.
const (
	// MaxQUICHelloBytes bounds the CRYPTO bytes kept, in order and out of
	// order, and so the ClientHello it can return.
	MaxQUICHelloBytes = quicinitial.MaxHelloBytes
	// MaxQUICHelloDatagrams bounds the datagrams it reads.
	MaxQUICHelloDatagrams = quicinitial.MaxHelloDatagrams
)

// ErrQUICHelloGaveUp reports that a QUICHello stopped reading for good: a
// limit was reached, or the client's CRYPTO stream does not start with a
// ClientHello.
var ErrQUICHelloGaveUp = quicinitial.ErrGaveUp

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
// QUICHello is not safe for concurrent use. It is internal/quicinitial's
// Hello, which the client uses to read its own Initials.
type QUICHello struct {
	h quicinitial.Hello
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
	return q.h.Add(datagram)
}

// Version is the QUIC version of the Initials read (QUICv1 or QUICv2), 0
// before any.
func (q *QUICHello) Version() uint32 { return q.h.Version() }
