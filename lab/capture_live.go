package lab

import (
	"errors"
	"io"
	"time"
)

// ErrNoPermission means the process may not open a packet socket (it needs
// root or CAP_NET_RAW). Use a Recorder instead.
var ErrNoPermission = errors.New("lab: live capture needs root or CAP_NET_RAW")

// ErrCaptureSync means a live capture did not read its sync marker in
// time (see LiveCapture.Sync).
var ErrCaptureSync = errors.New("lab: live capture did not see its sync marker")

// LiveComment starts the section header comment of live captures.
const LiveComment = "echlab live capture"

// StartLiveCapture captures the packets of an Ethernet-framed interface
// ("lo" frames are Ethernet with zero MACs) with a Linux AF_PACKET socket,
// keeps the TCP and UDP packets to or from one of ports (all of them when
// ports is empty), and writes them to w as pcapng. stop is
// LiveCapture.Stop. Without the privilege it returns ErrNoPermission.
//
// Live capture needs Linux: elsewhere StartLiveCapture returns an error
// wrapping errors.ErrUnsupported, and a Recorder's synthesized capture is
// the way to record.
func StartLiveCapture(iface string, ports []int, w io.Writer) (stop func() error, err error) {
	c, err := StartLive(iface, ports, w)
	if err != nil {
		return nil, err
	}
	return c.Stop, nil
}

// LiveCapture is a running live capture (see StartLiveCapture).
type LiveCapture struct{ impl liveImpl }

// liveImpl is the platform's live capture.
type liveImpl interface {
	stop() error
	sync(timeout time.Duration) error
	tcpOpens(port uint16) int
}

// StartLive is StartLiveCapture returning the capture, which can also be
// synchronised with (Sync) and asked what it saw (TCPOpens).
func StartLive(iface string, ports []int, w io.Writer) (*LiveCapture, error) {
	impl, err := startLive(iface, ports, w)
	if err != nil {
		return nil, err
	}
	return &LiveCapture{impl: impl}, nil
}

// Stop ends the capture once it has read every packet sent before the
// call (on a loopback interface, see Sync; elsewhere once the socket has
// been idle for 50 ms, at most a second), flushes w and reports the first
// error.
func (c *LiveCapture) Stop() error { return c.impl.stop() }

// Sync returns once the capture has read every packet sent on the
// interface before the call: it sends a marker datagram from 127.0.0.1 to
// itself, which the capture reads after them and does not write. It needs
// a loopback interface (errors.ErrUnsupported elsewhere) and returns
// ErrCaptureSync when the marker is not read within timeout.
func (c *LiveCapture) Sync(timeout time.Duration) error { return c.impl.sync(timeout) }

// TCPOpens is the number of TCP connection openings (SYN without ACK) to
// port that the capture has read so far, whatever its port filter.
func (c *LiveCapture) TCPOpens(port uint16) int { return c.impl.tcpOpens(port) }
