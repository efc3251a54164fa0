package lab

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/echlab/echlab/lab/capture"
)

// capturer is the run's observer: a synthesized capture from the relays,
// or a live one on lo.
type capturer interface {
	kind() string         // CaptureSynth or CaptureLive
	ready(s *stack) error // every listener is up
	stop() error          // write capture.pcapng
}

// synthCapture records through the Observer's relays.
type synthCapture struct {
	rec  *capture.Recorder
	obs  *capture.Observer
	file string
}

func (c *synthCapture) kind() string       { return CaptureSynth }
func (c *synthCapture) ready(*stack) error { return nil }

func (c *synthCapture) stop() error {
	c.obs.Close() //nolint:errcheck // relays end with their connections
	f, err := os.OpenFile(c.file, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	if err := c.rec.WritePcapng(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// startCapture picks the capture kind and, for synth, puts the Observer
// into the stack so that every listener gets a relay.
func startCapture(cfg RunConfig, out *outputs, s *stack) (capturer, error) {
	file := filepath.Join(out.dir, FileCapture)
	if cfg.filter == nil && (cfg.Capture == CaptureLive || cfg.Capture == CaptureAuto) {
		c, err := newLiveCapture(file)
		switch {
		case err == nil:
			return c, nil
		case cfg.Capture == CaptureLive:
			return nil, err
		}
	}
	rec := capture.NewRecorder()
	s.observer = &capture.Observer{WrapConn: rec.WrapConn, WrapPacketConn: rec.WrapPacketConn, Filter: cfg.filter}
	s.closers = append(s.closers, s.observer)
	return &synthCapture{rec: rec, obs: s.observer, file: file}, nil
}

// startLiveCapture starts the run's live capture (a test wraps it).
var startLiveCapture = capture.StartLiveCapture

// liveRun is a live capture on lo, started once the lab's ports are known.
type liveRun struct {
	file string
	f    *os.File
	halt func() error
}

// newLiveCapture checks that a packet socket can be opened here.
func newLiveCapture(file string) (capturer, error) {
	halt, err := capture.StartLiveCapture("lo", []int{1}, io.Discard)
	if err != nil {
		return nil, err
	}
	if err := halt(); err != nil {
		return nil, err
	}
	return &liveRun{file: file}, nil
}

func (c *liveRun) kind() string { return CaptureLive }

// ready starts capturing the ports clients talk to: every server's and the
// resolver's listeners (split mode's backend leg is not on the client's
// path, so it is left out).
func (c *liveRun) ready(s *stack) error {
	var ports []int
	for _, sv := range s.services {
		ports = append(ports, int(port(sv.real)))
		if sv.udp != "" {
			ports = append(ports, int(port(sv.udp)))
		}
	}
	for _, a := range s.resolver.Addrs() {
		ports = append(ports, int(port(a.Addr.String())))
	}
	f, err := os.OpenFile(c.file, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	halt, err := startLiveCapture("lo", ports, f)
	if err != nil {
		f.Close()
		return err
	}
	c.f, c.halt = f, halt
	return nil
}

func (c *liveRun) stop() error {
	if c.halt == nil {
		return nil
	}
	err := c.halt()
	c.halt = nil
	return errors.Join(err, c.f.Close())
}
