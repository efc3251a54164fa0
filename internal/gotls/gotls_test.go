package gotls

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/echlab/echlab/client"
)

func TestErrorClass(t *testing.T) {
	for _, c := range []struct {
		err  error
		want client.Class
	}{
		{&client.Error{Class: client.ClassDNS, Err: errors.New("x")}, client.ClassDNS},
		{fmt.Errorf("wrapped: %w", &tls.ECHRejectionError{}), client.ClassECHRejected},
		{&tls.CertificateVerificationError{Err: errors.New("bad")}, client.ClassCertificate},
		{context.DeadlineExceeded, client.ClassTimeout},
		{fmt.Errorf("crypto/tls: %w", client.ErrNoAddress), client.ClassDNS},
		{&net.OpError{Op: "dial", Err: errors.New("refused")}, client.ClassConnect},
		{errors.New("tls: handshake failure"), client.ClassHandshake},
	} {
		if got := ErrorClass(c.err); got != c.want {
			t.Errorf("ErrorClass(%v) = %s, want %s", c.err, got, c.want)
		}
	}
}
