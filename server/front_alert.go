package server

import (
	"errors"
	"net"
	"time"
)

// TLS alert descriptions the split front (and a shared-mode server that
// opened ECH itself: openConn) sends (RFC 8446 §6.2).
const (
	alertUnexpectedMessage = 10
	alertIllegalParameter  = 47
	alertDecodeError       = 50
	alertDecryptError      = 51
	alertInternalError     = 80
	alertMissingExtension  = 109
	alertUnrecognizedName  = 112
)

// alertError is an error the split front answers with a fatal TLS alert
// before it closes the connection.
type alertError struct {
	desc uint8
	err  error
}

func (e *alertError) Error() string { return e.err.Error() }
func (e *alertError) Unwrap() error { return e.err }

// withAlert marks err to be answered with the alert desc.
func withAlert(desc uint8, err error) error { return &alertError{desc: desc, err: err} }

// flightAlert picks the alert for a ClientHello that could not be read:
// none when the client sent an alert itself or went silent (timeout),
// unexpected_message for a record that is not a handshake, decode_error for
// everything else (bad framing, truncation, too many records or bytes).
func flightAlert(err error) error {
	var ne net.Error
	switch {
	case errors.Is(err, errPeerAlert), errors.As(err, &ne) && ne.Timeout():
		return err
	case errors.Is(err, errNotHandshake):
		return withAlert(alertUnexpectedMessage, err)
	}
	return withAlert(alertDecodeError, err)
}

// alertRecord is a plaintext TLS record holding one fatal alert.
func alertRecord(desc uint8) []byte {
	return []byte{recordAlert, 3, 3, 0, 2, 2, desc}
}

// sendAlert writes the alert err asks for, if any, bounded in time.
func sendAlert(c net.Conn, err error) {
	var ae *alertError
	if !errors.As(err, &ae) {
		return
	}
	c.SetWriteDeadline(time.Now().Add(time.Second)) //nolint:errcheck
	c.Write(alertRecord(ae.desc))                   //nolint:errcheck // the client may be gone
}
