//go:build !linux

package capture

import "net"

// acceptQueue cannot read a listener's accept queue here.
func acceptQueue(net.Listener) (int, bool) { return 0, false }
