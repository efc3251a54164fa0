package quicinitial

import "errors"

// ErrPacket reports a QUIC packet that could not be read: a malformed
// header or frame, an unknown version, or an Initial whose protection does
// not open with the keys of its Destination Connection ID.
var ErrPacket = errors.New("quicinitial: unreadable QUIC packet")

// ErrGaveUp reports that a Hello stopped reading for good: a limit was
// reached, or the client's CRYPTO stream does not start with a ClientHello.
var ErrGaveUp = errors.New("quicinitial: QUIC ClientHello not read")
