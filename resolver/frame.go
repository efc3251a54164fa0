package resolver

import (
	"encoding/binary"
	"io"
)

// The stream transports (TCP, DoT, DoQ) carry a DNS message behind its
// 2-octet length (RFC 1035 §4.2.2, RFC 9250 §4.2).

// frame returns msg behind its 2-octet length, in a new slice.
func frame(msg []byte) []byte {
	out := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(msg)), uint16(len(msg)))
	return append(out, msg...)
}

// readFrame reads one length-prefixed message from r and returns it
// without its length.
func readFrame(r io.Reader) ([]byte, error) {
	var l [2]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return nil, err
	}
	msg := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(r, msg); err != nil {
		return nil, err
	}
	return msg, nil
}
