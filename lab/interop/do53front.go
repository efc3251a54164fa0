package interop

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/echlab/echlab/internal/relay"
)

// do53Timeout bounds one forwarded UDP exchange and one idle TCP
// connection of the Do53 front.
const do53Timeout = 10 * time.Second

// Do53Front is the system resolver's address as the browsers see it: a
// forwarder on a fixed address (resolv.conf cannot name a port, so it is
// port 53) that passes every Do53 query, UDP and TCP, on to the adversary's
// Do53 relays (which listen on free ports) and the answers back. It
// changes nothing; the relays behind it see and rewrite.
type Do53Front struct {
	pc   net.PacketConn
	ln   net.Listener
	udp  string // the UDP relay's address
	tcp  string // the TCP relay's address
	wg   sync.WaitGroup
	mu   sync.Mutex
	open map[net.Conn]struct{}
}

// StartDo53Front listens on addr (UDP and TCP, e.g. "127.0.0.1:53") and
// forwards UDP queries to udpRelay and TCP connections to tcpRelay.
func StartDo53Front(addr, udpRelay, tcpRelay string) (*Do53Front, error) {
	pc, ln, err := listenPair(addr)
	if err != nil {
		return nil, fmt.Errorf("interop: Do53 front: %w", err)
	}
	f := &Do53Front{pc: pc, ln: ln, udp: udpRelay, tcp: tcpRelay, open: map[net.Conn]struct{}{}}
	f.wg.Add(2)
	go f.serveUDP()
	go f.serveTCP()
	return f, nil
}

// Addr is the front's address (UDP and TCP share it).
func (f *Do53Front) Addr() string { return f.pc.LocalAddr().String() }

// serveUDP forwards each query on a socket of its own and sends the first
// answer back; a query the relay discards gets no answer, as on the wire.
func (f *Do53Front) serveUDP() {
	defer f.wg.Done()
	for {
		b := make([]byte, 65535)
		n, from, err := f.pc.ReadFrom(b)
		if err != nil {
			return
		}
		up, err := net.Dial("udp", f.udp)
		if err != nil {
			continue
		}
		if !f.track(up) {
			return
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer f.untrack(up)
			up.SetDeadline(time.Now().Add(do53Timeout)) //nolint:errcheck // a UDP socket
			if _, err := up.Write(b[:n]); err != nil {
				return
			}
			m, err := up.Read(b)
			if err != nil {
				return
			}
			f.pc.WriteTo(b[:m], from) //nolint:errcheck // the client may be gone
		}()
	}
}

// serveTCP pipes each connection to the TCP relay.
func (f *Do53Front) serveTCP() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		if !f.track(c) {
			return
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer f.untrack(c)
			up, err := net.DialTimeout("tcp", f.tcp, do53Timeout)
			if err != nil {
				c.Close()
				return
			}
			relay.Pipe(c, up, do53Timeout)
		}()
	}
}

// track registers c for Close; false (c closed) once the front is closed.
func (f *Do53Front) track(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.open == nil {
		c.Close()
		return false
	}
	f.open[c] = struct{}{}
	return true
}

func (f *Do53Front) untrack(c net.Conn) {
	f.mu.Lock()
	delete(f.open, c)
	f.mu.Unlock()
	c.Close()
}

// Close stops the front and waits for its exchanges to end.
func (f *Do53Front) Close() error {
	err := errors.Join(f.pc.Close(), f.ln.Close())
	f.mu.Lock()
	for c := range f.open {
		c.Close()
	}
	f.open = nil
	f.mu.Unlock()
	f.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// listenPair opens a UDP socket and a TCP listener on the same address.
// With port 0 the UDP port the kernel picks may be taken for TCP, so a
// free pair is looked for (20 tries).
func listenPair(addr string) (net.PacketConn, net.Listener, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, err
	}
	tries := 1
	if port == "0" {
		tries = 20
	}
	for i := 0; ; i++ {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, err
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		if i+1 >= tries {
			return nil, nil, err
		}
	}
}
