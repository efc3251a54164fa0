package lab

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// UDPRelayIdle is how long a UDP relay keeps a client's session socket
// without traffic before it closes it.
const UDPRelayIdle = 30 * time.Second

// Observer is the lab's on-path observer when no live capture is possible:
// a set of recording relays, one in front of each server and resolver
// listener. The DNS records and resolver URLs the client uses point at the
// relays' addresses, so every byte the client exchanges passes through
// them. The relay hands its client-side sockets to WrapConn and
// WrapPacketConn (a Recorder's wrappers), which see what a wire observer
// between client and relay would see.
type Observer struct {
	// WrapConn wraps each accepted client TCP connection; nil records
	// nothing.
	WrapConn func(net.Conn) net.Conn
	// WrapPacketConn wraps each client-facing UDP socket; nil records
	// nothing.
	WrapPacketConn func(net.PacketConn) net.PacketConn

	mu     sync.Mutex
	closed bool
	relays []io.Closer
	wg     sync.WaitGroup
}

// RelayTCP starts a relay on 127.0.0.1 (a free port) that forwards every
// connection to backend, and returns its address.
func (o *Observer) RelayTCP(backend string) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("lab: relay for %s: %w", backend, err)
	}
	return o.serveTCP(ln, backend)
}

// RelayPair starts a TCP and a UDP relay on the same port number (as an
// HTTPS server with HTTP/3 listens), forwarding to the TCP and UDP
// backends, and returns the shared address.
func (o *Observer) RelayPair(tcpBackend, udpBackend string) (string, error) {
	var lastErr error
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", fmt.Errorf("lab: relay for %s: %w", tcpBackend, err)
		}
		pc, err := net.ListenPacket("udp", ln.Addr().String())
		if err != nil {
			ln.Close()
			lastErr = err
			continue
		}
		addr, err := o.serveTCP(ln, tcpBackend)
		if err != nil {
			pc.Close()
			return "", err
		}
		if _, err := o.serveUDP(pc, udpBackend); err != nil {
			return "", err
		}
		return addr, nil
	}
	return "", fmt.Errorf("lab: no port free for both TCP and UDP: %w", lastErr)
}

// RelayUDP starts a UDP relay on 127.0.0.1 (a free port) that forwards
// datagrams to backend, one session socket per client address, and
// returns its address.
func (o *Observer) RelayUDP(backend string) (string, error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("lab: relay for %s: %w", backend, err)
	}
	return o.serveUDP(pc, backend)
}

// Close stops every relay and waits for their goroutines.
func (o *Observer) Close() error {
	o.mu.Lock()
	o.closed = true
	relays := o.relays
	o.relays = nil
	o.mu.Unlock()
	var errs []error
	for _, r := range relays {
		if err := r.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	o.wg.Wait()
	return errors.Join(errs...)
}

// track registers c to be closed by Close; it reports false (and closes
// c) when the observer is already closed.
func (o *Observer) track(c io.Closer) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		c.Close()
		return false
	}
	o.relays = append(o.relays, c)
	return true
}

func (o *Observer) serveTCP(ln net.Listener, backend string) (string, error) {
	if !o.track(ln) {
		return "", fmt.Errorf("lab: relay for %s: %w", backend, net.ErrClosed)
	}
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if o.WrapConn != nil {
				c = o.WrapConn(c)
			}
			if !o.track(c) {
				return
			}
			o.wg.Add(1)
			go func() {
				defer o.wg.Done()
				relayTCP(c, backend)
			}()
		}
	}()
	return ln.Addr().String(), nil
}

// relayTCP copies bytes both ways between client and a fresh connection
// to backend, passing half-closes on, until both directions end.
func relayTCP(client net.Conn, backend string) {
	defer client.Close()
	up, err := net.DialTimeout("tcp", backend, 5*time.Second)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		io.Copy(dst, src) //nolint:errcheck // a relay ends on any error
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite() //nolint:errcheck
		} else {
			dst.Close()
		}
		done <- struct{}{}
	}
	go pipe(up, client)
	go pipe(client, up)
	<-done
	<-done
}

// udpSession is one client address's socket towards the backend.
type udpSession struct {
	up   *net.UDPConn
	last time.Time
}

func (o *Observer) serveUDP(pc net.PacketConn, backend string) (string, error) {
	baddr, err := net.ResolveUDPAddr("udp", backend)
	if err != nil {
		pc.Close()
		return "", fmt.Errorf("lab: relay backend %q: %w", backend, err)
	}
	addr := pc.LocalAddr().String()
	if o.WrapPacketConn != nil {
		pc = o.WrapPacketConn(pc)
	}
	if !o.track(pc) {
		return "", fmt.Errorf("lab: relay for %s: %w", backend, net.ErrClosed)
	}
	r := &udpRelay{o: o, pc: pc, backend: baddr, sessions: map[string]*udpSession{}}
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		r.run()
	}()
	return addr, nil
}

// udpRelay forwards datagrams between client addresses on pc and the
// backend, one connected session socket per client address.
type udpRelay struct {
	o        *Observer
	pc       net.PacketConn
	backend  *net.UDPAddr
	mu       sync.Mutex
	sessions map[string]*udpSession
}

func (r *udpRelay) run() {
	buf := make([]byte, 65535)
	for {
		n, from, err := r.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		s, err := r.session(from)
		if err != nil {
			continue
		}
		s.up.Write(buf[:n]) //nolint:errcheck // UDP: a lost datagram is the client's to retry
	}
}

// session returns the session socket of a client address, making it (and
// its backend-to-client loop) on first use.
func (r *udpRelay) session(from net.Addr) (*udpSession, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := from.String()
	if s, ok := r.sessions[key]; ok {
		s.last = time.Now()
		return s, nil
	}
	up, err := net.DialUDP("udp", nil, r.backend)
	if err != nil {
		return nil, err
	}
	if !r.o.track(up) {
		return nil, net.ErrClosed
	}
	s := &udpSession{up: up, last: time.Now()}
	r.sessions[key] = s
	r.o.wg.Add(1)
	go func() {
		defer r.o.wg.Done()
		r.back(s, from, key)
	}()
	return s, nil
}

// back copies the backend's datagrams to the client until the session
// has been idle for UDPRelayIdle or the relay closes.
func (r *udpRelay) back(s *udpSession, client net.Addr, key string) {
	defer func() {
		r.mu.Lock()
		delete(r.sessions, key)
		r.mu.Unlock()
		s.up.Close()
	}()
	buf := make([]byte, 65535)
	for {
		s.up.SetReadDeadline(time.Now().Add(UDPRelayIdle)) //nolint:errcheck
		n, err := s.up.Read(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				r.mu.Lock()
				idle := time.Since(s.last) >= UDPRelayIdle
				r.mu.Unlock()
				if !idle {
					continue
				}
			}
			return
		}
		if _, err := r.pc.WriteTo(buf[:n], client); err != nil {
			return
		}
	}
}

// capturer is the run's observer: a synthesized capture from the relays,
// or a live one on lo.
type capturer interface {
	kind() string         // CaptureSynth or CaptureLive
	ready(s *stack) error // every listener is up
	stop() error          // write capture.pcapng
}

// synthCapture records through the Observer's relays.
type synthCapture struct {
	rec  *Recorder
	obs  *Observer
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
	if cfg.Capture == CaptureLive || cfg.Capture == CaptureAuto {
		c, err := newLiveCapture(file)
		switch {
		case err == nil:
			return c, nil
		case cfg.Capture == CaptureLive:
			return nil, err
		}
	}
	rec := NewRecorder()
	s.observer = &Observer{WrapConn: rec.WrapConn, WrapPacketConn: rec.WrapPacketConn}
	s.closers = append(s.closers, s.observer)
	return &synthCapture{rec: rec, obs: s.observer, file: file}, nil
}

// liveRun is a live capture on lo, started once the lab's ports are known.
type liveRun struct {
	file string
	f    *os.File
	halt func() error
}

// newLiveCapture checks that a packet socket can be opened here.
func newLiveCapture(file string) (capturer, error) {
	halt, err := StartLiveCapture("lo", []int{1}, io.Discard)
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
	halt, err := StartLiveCapture("lo", ports, f)
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
