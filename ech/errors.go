package ech

import (
	"errors"
	"fmt"
)

// Sentinel errors. Typed errors below wrap one of these, so callers can test
// with errors.Is without looking at the message.
var (
	// ErrMalformed reports bytes that do not follow the wire format.
	ErrMalformed = errors.New("ech: malformed input")
	// ErrInvalid reports a well-formed value that breaks a rule of the spec.
	ErrInvalid = errors.New("ech: invalid value")
	// ErrUnsupported reports an algorithm or version this package cannot use.
	ErrUnsupported = errors.New("ech: unsupported")
	// ErrDecrypt reports that no key could open an ECH payload.
	ErrDecrypt = errors.New("ech: decryption failed")
)

// FieldError names the field of a structure that failed to parse or validate.
type FieldError struct {
	Struct string // e.g. "ECHConfig", "ClientHello"
	Field  string // e.g. "public_name"
	Reason string // short human explanation, may be empty
	Err    error  // one of the sentinel errors
}

// Error formats the error as "ech: Struct.field: reason".
func (e *FieldError) Error() string {
	msg := fmt.Sprintf("ech: %s.%s", e.Struct, e.Field)
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	return msg
}

// Unwrap returns the sentinel error the FieldError belongs to.
func (e *FieldError) Unwrap() error { return e.Err }

func malformed(strct, field string) error {
	return &FieldError{Struct: strct, Field: field, Reason: "truncated or malformed", Err: ErrMalformed}
}

func invalid(strct, field, reason string) error {
	return &FieldError{Struct: strct, Field: field, Reason: reason, Err: ErrInvalid}
}

func unsupported(strct, field, reason string) error {
	return &FieldError{Struct: strct, Field: field, Reason: reason, Err: ErrUnsupported}
}
