//go:build !linux

package capture

import (
	"bytes"
	"errors"
	"testing"
)

// TestLiveCaptureNeedsLinux checks that live capture refuses, with a
// one-line error wrapping errors.ErrUnsupported, where there are no
// AF_PACKET sockets, and writes nothing.
func TestLiveCaptureNeedsLinux(t *testing.T) {
	var buf bytes.Buffer
	stop, err := StartLiveCapture("lo", []int{443}, &buf)
	if !errors.Is(err, errors.ErrUnsupported) || stop != nil {
		t.Fatalf("StartLiveCapture = %v, want an error wrapping errors.ErrUnsupported", err)
	}
	if want := "lab: live capture needs Linux (AF_PACKET sockets): unsupported operation"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if buf.Len() != 0 {
		t.Errorf("wrote %d bytes", buf.Len())
	}
}
