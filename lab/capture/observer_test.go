package capture

import (
	"io"
	"net"
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
