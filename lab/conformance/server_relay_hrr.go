package conformance

import (
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/echlab/echlab/ech"
)

// extECH is the encrypted_client_hello extension's code point.
const extECH = 0xfe0d

// stripECHFromHRR removes the encrypted_client_hello extension (the
// server's hrr_accept_confirmation, RFC 9849 §7.2.1) from a
// HelloRetryRequest, fixing the extensions, handshake and record lengths,
// and relays on. Records before the first handshake record are kept; the
// message is re-framed in records of the first handshake record's
// legacy_record_version.
func stripECHFromHRR(records, msg []byte) ([]byte, bool, error) {
	if len(msg) < randomOffset+32 || msg[0] != typeServerHello ||
		[32]byte(msg[randomOffset:randomOffset+32]) != hrrRandom {
		return nil, false, fmt.Errorf("%w: want a HelloRetryRequest", ErrFirstFlight)
	}
	body, err := withoutExtension(msg[4:], extECH)
	if err != nil {
		return nil, false, err
	}
	var b cryptobyte.Builder
	b.AddUint8(typeServerHello)
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(body) })
	out, err := b.Bytes()
	if err != nil {
		return nil, false, fmt.Errorf("%w: %v", ErrFirstFlight, err)
	}
	lead := 0
	for lead+5 <= len(records) && records[lead] != 22 {
		lead += 5 + (int(records[lead+3])<<8 | int(records[lead+4]))
	}
	if lead+5 > len(records) {
		return nil, false, fmt.Errorf("%w: no handshake record", ErrFirstFlight)
	}
	version := uint16(records[lead+1])<<8 | uint16(records[lead+2])
	return append(append([]byte(nil), records[:lead]...), ech.MarshalRecordsVersion(out, version)...), true, nil
}

// flipHRRConfirmation flips the last bit of the HelloRetryRequest's
// encrypted_client_hello extension: the 8-byte hrr_accept_confirmation
// of RFC 9849 §7.2.1. Lengths do not change, so the records are edited in
// place (a leading change_cipher_spec record kept, any fragmentation
// followed).
func flipHRRConfirmation(records, msg []byte) ([]byte, bool, error) {
	if len(msg) < randomOffset+32 || msg[0] != typeServerHello ||
		[32]byte(msg[randomOffset:randomOffset+32]) != hrrRandom {
		return nil, false, fmt.Errorf("%w: want a HelloRetryRequest", ErrFirstFlight)
	}
	off, n, err := extensionData(msg, extECH)
	if err != nil {
		return nil, false, err
	}
	if n != 8 {
		return nil, false, fmt.Errorf("%w: HelloRetryRequest ECH extension of %d bytes, want 8", ErrFirstFlight, n)
	}
	at, err := recordOffset(records, off+n-1)
	if err != nil {
		return nil, false, err
	}
	out := append([]byte(nil), records...)
	out[at] ^= 0x01
	return out, true, nil
}

// extensionData returns the offset in msg (a ServerHello or
// HelloRetryRequest message, header included) and the length of the data
// of extension typ.
func extensionData(msg []byte, typ uint16) (off, n int, err error) {
	if len(msg) < 4 {
		return 0, 0, fmt.Errorf("%w: truncated ServerHello", ErrFirstFlight)
	}
	s := cryptobyte.String(msg[4:])
	var sessionID, exts cryptobyte.String
	if !s.Skip(2+32) || !s.ReadUint8LengthPrefixed(&sessionID) || !s.Skip(2+1) ||
		!s.ReadUint16LengthPrefixed(&exts) || !s.Empty() {
		return 0, 0, fmt.Errorf("%w: truncated ServerHello", ErrFirstFlight)
	}
	for !exts.Empty() {
		var t uint16
		var data cryptobyte.String
		if !exts.ReadUint16(&t) || !exts.ReadUint16LengthPrefixed(&data) {
			return 0, 0, fmt.Errorf("%w: bad ServerHello extension", ErrFirstFlight)
		}
		if t == typ {
			return len(msg) - len(exts) - len(data), len(data), nil
		}
	}
	return 0, 0, fmt.Errorf("%w: no extension %#04x", ErrFirstFlight, typ)
}

// withoutExtension returns a ServerHello body (from legacy_version on) with
// extension typ removed; the body must hold it.
func withoutExtension(body []byte, typ uint16) ([]byte, error) {
	s := cryptobyte.String(body)
	var sessionID, exts cryptobyte.String
	var head []byte
	if !s.Skip(2+32) || !s.ReadUint8LengthPrefixed(&sessionID) || !s.Skip(2+1) {
		return nil, fmt.Errorf("%w: truncated ServerHello", ErrFirstFlight)
	}
	head = body[:len(body)-len(s)]
	if !s.ReadUint16LengthPrefixed(&exts) || !s.Empty() {
		return nil, fmt.Errorf("%w: bad ServerHello extensions", ErrFirstFlight)
	}
	var kept []byte
	found := false
	for !exts.Empty() {
		start := exts
		var t uint16
		var data cryptobyte.String
		if !exts.ReadUint16(&t) || !exts.ReadUint16LengthPrefixed(&data) {
			return nil, fmt.Errorf("%w: bad ServerHello extension", ErrFirstFlight)
		}
		if t == typ {
			found = true
			continue
		}
		kept = append(kept, start[:len(start)-len(exts)]...)
	}
	if !found {
		return nil, fmt.Errorf("%w: no extension %#04x to remove", ErrFirstFlight, typ)
	}
	var b cryptobyte.Builder
	b.AddBytes(head)
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(kept) })
	return b.Bytes()
}
