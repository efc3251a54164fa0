package capture

import (
	"encoding/binary"
	"fmt"
)

// pcapng block and secrets types of the Decryption Secrets Block
// (draft-ietf-opsawg-pcapng §4.7).
const (
	pcapngDSB      = 0x0000000A
	dsbTLSKeyLog   = 0x544c534b // "TLSK": NSS key log (SSLKEYLOGFILE) lines
	dsbHeaderBytes = 8 + 8      // type, length, secrets type, secrets length
)

// InsertDSB returns a pcapng capture with a Decryption Secrets Block of
// type TLS key log holding keylog, placed right after the first section
// header (before any packet), in the section's byte order.
func InsertDSB(capture, keylog []byte) ([]byte, error) {
	if len(capture) < 28 || binary.LittleEndian.Uint32(capture) != pcapngSHB {
		return nil, fmt.Errorf("lab: a Decryption Secrets Block needs a pcapng capture: %w", ErrNotCapture)
	}
	var order binary.ByteOrder = binary.LittleEndian
	if binary.LittleEndian.Uint32(capture[8:]) != 0x1A2B3C4D {
		order = binary.BigEndian
	}
	shbLen := int(order.Uint32(capture[4:]))
	if shbLen < 28 || shbLen > len(capture) {
		return nil, &CaptureError{Format: "pcapng", Offset: 4, Field: "section header block length", Err: ErrMalformed}
	}
	padded := (len(keylog) + 3) &^ 3
	total := dsbHeaderBytes + padded + 4
	dsb := make([]byte, total)
	order.PutUint32(dsb[0:], pcapngDSB)
	order.PutUint32(dsb[4:], uint32(total))
	order.PutUint32(dsb[8:], dsbTLSKeyLog)
	order.PutUint32(dsb[12:], uint32(len(keylog)))
	copy(dsb[16:], keylog)
	order.PutUint32(dsb[total-4:], uint32(total))
	out := make([]byte, 0, len(capture)+total)
	out = append(out, capture[:shbLen]...)
	out = append(out, dsb...)
	return append(out, capture[shbLen:]...), nil
}
