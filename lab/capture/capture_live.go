package capture

import (
	"errors"
	"io"
)

// ErrNoPermission means the process may not open a packet socket (it needs
// root or CAP_NET_RAW). Use a Recorder instead.
var ErrNoPermission = errors.New("lab: live capture needs root or CAP_NET_RAW")

// LiveComment starts the section header comment of live captures.
const LiveComment = "echlab live capture"

// StartLiveCapture captures the packets of an Ethernet-framed interface
// ("lo" frames are Ethernet with zero MACs) with a Linux AF_PACKET socket,
// keeps the TCP and UDP packets to or from one of ports (all of them when
// ports is empty), and writes them to w as pcapng. stop ends the capture,
// flushes w and reports the first error. Without the privilege it returns
// ErrNoPermission.
//
// Live capture needs Linux: elsewhere StartLiveCapture returns an error
// wrapping errors.ErrUnsupported, and a Recorder's synthesized capture is
// the way to record.
func StartLiveCapture(iface string, ports []int, w io.Writer) (stop func() error, err error) {
	return startLive(iface, ports, w)
}
