package capture

import (
	"net"

	"golang.org/x/sys/unix"
)

// acceptQueue returns how many established connections wait in ln's
// accept queue: for a listening socket Linux reports it as tcpi_unacked.
func acceptQueue(ln net.Listener) (int, bool) {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return 0, false
	}
	rc, err := tl.SyscallConn()
	if err != nil {
		return 0, false
	}
	n, got := 0, false
	rc.Control(func(fd uintptr) { //nolint:errcheck // got stays false
		if info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
			n, got = int(info.Unacked), true
		}
	})
	return n, got
}
