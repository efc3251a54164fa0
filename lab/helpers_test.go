package lab

import (
	"bytes"
	"crypto/tls"
	"os"
	"path/filepath"
	"testing"

	"github.com/echlab/echlab/internal/labtest"
	"github.com/echlab/echlab/internal/testutil"
	"github.com/echlab/echlab/lab/capture"
	"github.com/echlab/echlab/lab/observe"
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

// writeCapture writes rec to a file in a temporary directory.
func writeCapture(t testing.TB, rec *capture.Recorder) string {
	t.Helper()
	var buf bytes.Buffer
	if err := rec.WritePcapng(&buf); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "capture.pcapng")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func compareFile(t testing.TB, path string, opts observe.CompareOptions) *observe.Report {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rep, err := observe.Compare(f, opts)
	if err != nil {
		t.Fatalf("Compare(%s): %v", path, err)
	}
	return rep
}
