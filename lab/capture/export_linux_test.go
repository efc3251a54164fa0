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

// Seen and Dropped are the kernel's counts, read by Stop, of the frames
// that passed the capture's filter and of those it dropped.
func (lc *liveCapture) Seen() uint64    { return lc.seen }
func (lc *liveCapture) Dropped() uint64 { return lc.dropped }

// StarveLiveCaptureForTest makes the next live captures' socket buffer
// tiny and holds their reader until release is called, so that a test can
// make the kernel drop packets. restore undoes both.
func StarveLiveCaptureForTest() (release, restore func()) {
	hold, buf := make(chan struct{}), liveRcvBuf
	liveHold, liveRcvBuf = hold, 4096
	var once bool
	release = func() {
		if !once {
			once = true
			close(hold)
		}
	}
	return release, func() { release(); liveHold, liveRcvBuf = nil, buf }
}
