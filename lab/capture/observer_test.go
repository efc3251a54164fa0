package capture

import (
	"io"
	"net"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/echlab/echlab/internal/testutil"
)

// waitTables polls the observer's tables until they hold want entries and
// no UDP session, and fails after a deadline.
func waitTables(t *testing.T, o *Observer, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		open, sessions := o.tables()
		if open == want && sessions == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("observer tables: %d entries to close and %d UDP sessions; want %d and 0 once the traffic has ended", open, sessions, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// udpEcho is a UDP backend on loopback that echoes every datagram.
func udpEcho(t *testing.T) net.PacketConn {
	t.Helper()
	ub, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ub.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			k, from, err := ub.ReadFrom(buf)
			if err != nil {
				return
			}
			ub.WriteTo(buf[:k], from) //nolint:errcheck
		}
	}()
	return ub
}

// TestObserverTablesShrink relays 500 short TCP connections and 500 UDP
// sessions (one client socket each) and checks that, once the connections
// have closed and the sessions have been idle for UDPIdle, the observer
// holds only its two listening sockets: the close table and the session
// maps do not grow with every connection.
func TestObserverTablesShrink(t *testing.T) {
	const n = 500
	tcpBackend := testutil.ServeEach(t, func(c net.Conn) {
		defer c.Close()
		io.Copy(c, c) //nolint:errcheck
	})
	ub := udpEcho(t)

	rec := NewRecorder()
	o := &Observer{WrapConn: rec.WrapConn, WrapPacketConn: rec.WrapPacketConn, UDPIdle: 100 * time.Millisecond}
	t.Cleanup(func() { o.Close() })
	tcpAddr, err := o.RelayTCP("https/test", tcpBackend)
	if err != nil {
		t.Fatal(err)
	}
	udpAddr, err := o.RelayUDP("dns/doq", ub.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	waitTables(t, o, 2)

	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", tcpAddr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		c.(*net.TCPConn).CloseWrite()
		if b, err := io.ReadAll(c); err != nil || string(b) != "ping" {
			t.Fatalf("TCP connection %d through the relay: %q, %v", i, b, err)
		}
		c.Close()
	}
	for i := 0; i < n; i++ {
		c, err := net.Dial("udp", udpAddr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 16)
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		if k, err := c.Read(buf); err != nil || string(buf[:k]) != "ping" {
			t.Fatalf("UDP session %d through the relay: %q, %v", i, buf[:k], err)
		}
		c.Close()
	}
	if _, sessions := o.tables(); sessions == 0 {
		t.Fatal("no UDP session open right after the exchanges: the test does not see the session map")
	}
	waitTables(t, o, 2)
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if open, sessions := o.tables(); open != 0 || sessions != 0 {
		t.Fatalf("after Close: %d entries, %d sessions", open, sessions)
	}
}

// verdictFilter gives every stream one verdict and passes every datagram.
type verdictFilter struct{ v Verdict }

func (f verdictFilter) Stream(Flow, []byte) Verdict { return f.v }

func (verdictFilter) Datagram(_ Flow, _ bool, b []byte) ([]byte, Verdict) { return b, Pass }

// TestObserverDialer: every relay reaches its backend through
// Observer.Dialer: the plain TCP relay, the filtered one (verdicts Pass
// and ResetAfterReply), the Do53 TCP relay and the UDP sessions.
func TestObserverDialer(t *testing.T) {
	tcpBackend := testutil.ServeEach(t, func(c net.Conn) {
		defer c.Close()
		io.Copy(c, c) //nolint:errcheck
	})
	ub := udpEcho(t)
	var mu sync.Mutex
	var dialed []string
	newObserver := func(f Filter) *Observer {
		o := &Observer{Filter: f, Dialer: &net.Dialer{Timeout: 5 * time.Second,
			Control: func(network, address string, _ syscall.RawConn) error {
				mu.Lock()
				defer mu.Unlock()
				dialed = append(dialed, network+" "+address)
				return nil
			}}}
		t.Cleanup(func() { o.Close() })
		return o
	}
	wantDialed := func(what, network, addr string) {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		if !slices.Contains(dialed, network+" "+addr) {
			t.Errorf("%s: the Dialer dialed %q, want %s %s among them", what, dialed, network, addr)
		}
		dialed = nil
	}
	exchange := func(network, addr string, msg []byte) ([]byte, error) {
		c, err := net.Dial(network, addr)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(msg); err != nil {
			return nil, err
		}
		buf := make([]byte, 64)
		k, err := io.ReadAtLeast(c, buf, len(msg))
		return buf[:k], err
	}
	for _, tc := range []struct {
		name   string
		filter Filter
		role   Role
		msg    string
		reset  bool
	}{
		{"plain", nil, "https/test", "ping", false},
		{"pass", verdictFilter{Pass}, "https/test", "ping", false},
		{"reset-after-reply", verdictFilter{ResetAfterReply}, "https/test", "ping", true},
		{"do53", verdictFilter{Pass}, RoleDo53, "\x00\x04ping", false},
	} {
		o := newObserver(tc.filter)
		addr, err := o.RelayTCP(tc.role, tcpBackend)
		if err != nil {
			t.Fatal(err)
		}
		got, err := exchange("tcp", addr, []byte(tc.msg))
		switch {
		case tc.reset && err == nil:
			t.Errorf("%s: %q back, want a reset", tc.name, got)
		case !tc.reset && (err != nil || string(got) != tc.msg):
			t.Errorf("%s: %q, %v back, want %q", tc.name, got, err, tc.msg)
		}
		wantDialed(tc.name, "tcp4", tcpBackend)
	}
	o := newObserver(nil)
	addr, err := o.RelayUDP("dns/doq", ub.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	if got, err := exchange("udp", addr, []byte("ping")); err != nil || string(got) != "ping" {
		t.Errorf("udp: %q, %v back", got, err)
	}
	wantDialed("udp", "udp4", ub.LocalAddr().String())
}
