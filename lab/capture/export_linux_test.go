package capture

import "io"

// Test hooks for the external tests (package capture_test), which read
// live captures back with observe.Compare.

// LiveCaptureForTest is startLiveCapture: the capture itself, so that a
// test can count the GSO super-packets it split.
func LiveCaptureForTest(iface string, ports []int, w io.Writer) (*liveCapture, error) {
	return startLiveCapture(iface, ports, w)
}

// Stop is stop.
func (lc *liveCapture) Stop() error { return lc.stop() }

// Splits is how many GSO/TSO super-packets the capture split.
func (lc *liveCapture) Splits() int64 { return lc.split.Load() }
