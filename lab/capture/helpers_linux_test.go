package capture_test

// A copy of the TLS helpers of lab/observe's tests (test helpers do not
// cross packages).

import (
	"crypto/tls"
	"testing"

	"github.com/echlab/echlab/internal/labtest"
	"github.com/echlab/echlab/internal/testutil"
	"github.com/echlab/echlab/lab/capture"
)

// labTLS is the shared loopback TLS fixture (internal/labtest).
type labTLS = labtest.TLS

func newLabTLS(t testing.TB) *labTLS { return labtest.NewTLS(t) }

// serveTLS accepts TLS connections on a recorded loopback listener and
// echoes one line back.
func serveTLS(t testing.TB, rec *capture.Recorder, cfg *tls.Config) string {
	t.Helper()
	ln := testutil.ListenTCP(t)
	labtest.ServeEcho(t, rec.WrapListener(ln), cfg)
	return ln.Addr().String()
}

// dialTLS makes one TLS connection and an exchange of a few bytes.
func dialTLS(t testing.TB, addr string, cfg *tls.Config) *tls.ConnectionState {
	t.Helper()
	return labtest.DialTLS(t, addr, cfg)
}
