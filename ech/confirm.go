package ech

import (
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"fmt"
	"hash"
)

// Labels of the two ECH acceptance signals (RFC 9849 §7.2, §7.2.1).
const (
	labelAccept    = "ech accept confirmation"
	labelHRRAccept = "hrr ech accept confirmation"
)

// suiteHash returns the transcript hash of a TLS 1.3 cipher suite.
func suiteHash(suite uint16) (func() hash.Hash, error) {
	switch suite {
	case 0x1301, 0x1303, 0x1304, 0x1305:
		return sha256.New, nil
	case 0x1302:
		return sha512.New384, nil
	}
	return nil, &FieldError{Struct: "ServerHello", Field: "cipher_suite",
		Reason: fmt.Sprintf("%#04x is not a TLS 1.3 cipher suite", suite), Err: ErrUnsupported}
}

// AcceptConfirmation computes the 8 bytes a server that accepted ECH puts at
// the end of ServerHello.random: HKDF-Expand-Label(HKDF-Extract(0,
// innerCH.random), "ech accept confirmation", Transcript-Hash(innerCH ||
// serverHello'), 8), where serverHello' has those 8 bytes zeroed. Both
// messages are handshake messages with their 4-byte headers; suite is the
// negotiated TLS 1.3 cipher suite.
func AcceptConfirmation(innerCH, serverHello []byte, suite uint16) ([8]byte, error) {
	return confirmation(labelAccept, suite, innerCH, nil, nil, serverHello)
}

// HRRAcceptConfirmation computes the confirmation a server that accepted ECH
// puts in the encrypted_client_hello extension of a HelloRetryRequest: the
// transcript is message_hash(innerCH1) || hrr', with the extension's 8
// bytes zeroed in hrr'.
func HRRAcceptConfirmation(innerCH1, hrr []byte, suite uint16) ([8]byte, error) {
	return confirmation(labelHRRAccept, suite, innerCH1, nil, nil, hrr)
}

// AcceptConfirmationAfterHRR computes the ServerHello confirmation of a
// handshake with a HelloRetryRequest: the transcript is
// message_hash(innerCH1) || hrr || innerCH2 || serverHello'.
func AcceptConfirmationAfterHRR(innerCH1, hrr, innerCH2, serverHello []byte, suite uint16) ([8]byte, error) {
	return confirmation(labelAccept, suite, innerCH1, hrr, innerCH2, serverHello)
}

// confirmation hashes ch1 (as message_hash when an HRR is involved), hrr and
// ch2 when set, and last with its confirmation bytes zeroed.
func confirmation(label string, suite uint16, ch1, hrr, ch2, last []byte) ([8]byte, error) {
	var out [8]byte
	h, err := suiteHash(suite)
	if err != nil {
		return out, err
	}
	inner, err := ParseClientHello(ch1)
	if err != nil {
		return out, err
	}
	sh, err := ParseServerHello(last)
	if err != nil {
		return out, err
	}
	if sh.IsHRR && sh.ECHConfirmation == nil {
		return out, invalid("HelloRetryRequest", "encrypted_client_hello", "absent")
	}
	zeroed := append([]byte(nil), last...)
	clear(zeroed[sh.ConfirmationStart : sh.ConfirmationStart+8])

	t := h()
	if sh.IsHRR || hrr != nil {
		t.Write(messageHash(h, ch1))
	} else {
		t.Write(ch1)
	}
	t.Write(hrr)
	t.Write(ch2)
	t.Write(zeroed)
	prk, err := hkdf.Extract(h, inner.Random, nil)
	if err != nil {
		return out, fmt.Errorf("ech: HKDF-Extract: %w", err)
	}
	conf, err := ExpandLabel(h, prk, label, t.Sum(nil), 8)
	if err != nil {
		return out, err
	}
	copy(out[:], conf)
	return out, nil
}

// messageHash builds the synthetic message_hash handshake message that
// replaces ClientHello1 in the transcript after an HRR (RFC 8446 §4.4.1).
func messageHash(h func() hash.Hash, ch1 []byte) []byte {
	d := h()
	d.Write(ch1)
	sum := d.Sum(nil)
	return append([]byte{typeMessageHash, 0, 0, byte(len(sum))}, sum...)
}

// ExpandLabel is HKDF-Expand-Label of RFC 8446 §7.1: HKDF-Expand of
// secret with the HkdfLabel {length, "tls13 " + label, context} as info,
// yielding length bytes. ECH's accept confirmation (RFC 9849 §7.2), the
// draft ESNI keys and QUIC's Initial keys (RFC 9001 §5.2) all use it.
// It returns an error, not a truncated label, when "tls13 " + label or
// context is longer than 255 bytes, and when length is negative or more
// than HKDF can produce (255 hash blocks).
func ExpandLabel(h func() hash.Hash, secret []byte, label string, context []byte, length int) ([]byte, error) {
	full := "tls13 " + label
	switch {
	case len(full) > 255:
		return nil, fmt.Errorf("ech: HKDF-Expand-Label: label of %d bytes, at most 249", len(label))
	case len(context) > 255:
		return nil, fmt.Errorf("ech: HKDF-Expand-Label: context of %d bytes, at most 255", len(context))
	case length < 0 || length > 0xffff:
		return nil, fmt.Errorf("ech: HKDF-Expand-Label: length %d out of range", length)
	}
	info := make([]byte, 0, 4+len(full)+len(context))
	info = append(info, byte(length>>8), byte(length), byte(len(full)))
	info = append(info, full...)
	info = append(info, byte(len(context)))
	info = append(info, context...)
	out, err := hkdf.Expand(h, secret, string(info), length)
	if err != nil {
		return nil, fmt.Errorf("ech: HKDF-Expand-Label: %w", err)
	}
	return out, nil
}

// VerifyAccepted reports whether serverHello (a ServerHello, not an HRR)
// signals that the server accepted ECH for innerCH: it negotiates TLS 1.3
// and the last 8 bytes of its random equal AcceptConfirmation under its
// own cipher suite. A ServerHello that does not negotiate TLS 1.3 is a
// rejection (false, nil).
func VerifyAccepted(innerCH, serverHello []byte) (bool, error) {
	return verify(serverHello, false, func(suite uint16) ([8]byte, error) {
		return AcceptConfirmation(innerCH, serverHello, suite)
	})
}

// VerifyHRRAccepted reports whether a HelloRetryRequest signals acceptance
// of ECH for innerCH1. An HRR without an encrypted_client_hello extension
// is a rejection (false, nil).
func VerifyHRRAccepted(innerCH1, hrr []byte) (bool, error) {
	return verify(hrr, true, func(suite uint16) ([8]byte, error) {
		return HRRAcceptConfirmation(innerCH1, hrr, suite)
	})
}

// VerifyAcceptedAfterHRR is VerifyAccepted for the ServerHello that follows
// a HelloRetryRequest.
func VerifyAcceptedAfterHRR(innerCH1, hrr, innerCH2, serverHello []byte) (bool, error) {
	return verify(serverHello, false, func(suite uint16) ([8]byte, error) {
		return AcceptConfirmationAfterHRR(innerCH1, hrr, innerCH2, serverHello, suite)
	})
}

func verify(msg []byte, wantHRR bool, compute func(suite uint16) ([8]byte, error)) (bool, error) {
	sh, err := ParseServerHello(msg)
	if err != nil {
		return false, err
	}
	if sh.IsHRR != wantHRR {
		return false, invalid("ServerHello", "random", fmt.Sprintf("HelloRetryRequest is %v, want %v", sh.IsHRR, wantHRR))
	}
	if sh.SupportedVersion != VersionTLS13 || (sh.IsHRR && sh.ECHConfirmation == nil) {
		return false, nil
	}
	want, err := compute(sh.CipherSuite)
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(want[:], sh.Confirmation()) == 1, nil
}
