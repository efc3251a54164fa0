package capture

import (
	"errors"
	"io"
)

// ErrNoPermission means the process may not open a packet socket (it needs
// root or CAP_NET_RAW). Use a Recorder instead.
var ErrNoPermission = errors.New("lab: live capture needs root or CAP_NET_RAW")

// ErrDropped means a live capture lost packets: the kernel dropped them
// because the capture did not read them fast enough. What was captured is
// written, but connections in it may be missing or cut, so verdicts drawn
// from it are incomplete.
var ErrDropped = errors.New("lab: the live capture lost packets")

// LiveComment starts the section header comment of live captures.
const LiveComment = "echlab live capture"

// StartLiveCapture captures the packets of an Ethernet-framed interface
// ("lo" frames are Ethernet with zero MACs) with a Linux AF_PACKET socket,
// keeps the TCP and UDP packets to or from one of ports (all of them when
// ports is empty), and writes them to w as pcapng. A kernel filter keeps
// other traffic (and, on loopback, each packet's second copy) out of the
// socket's buffer. stop ends the capture, flushes w and reports the first
// error, or ErrDropped when the kernel dropped packets the capture wanted. Without the privilege it returns
// ErrNoPermission.
//
// Live capture needs Linux: elsewhere StartLiveCapture returns an error
// wrapping errors.ErrUnsupported, and a Recorder's synthesized capture is
// the way to record.
func StartLiveCapture(iface string, ports []int, w io.Writer) (stop func() error, err error) {
	return startLive(iface, ports, w)
}
