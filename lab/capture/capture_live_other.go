//go:build !linux

package capture

import (
	"errors"
	"fmt"
	"io"
)

// errLiveNeedsLinux is what StartLiveCapture returns on systems other than
// Linux, which have no AF_PACKET sockets.
var errLiveNeedsLinux = fmt.Errorf("lab: live capture needs Linux (AF_PACKET sockets): %w", errors.ErrUnsupported)

// startLive is StartLiveCapture where there are no AF_PACKET sockets: it
// refuses with errLiveNeedsLinux, which wraps errors.ErrUnsupported.
func startLive(iface string, ports []int, w io.Writer) (stop func() error, err error) {
	return nil, errLiveNeedsLinux
}
