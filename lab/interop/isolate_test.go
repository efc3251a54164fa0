package interop

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// TestIsolate checks the namespace the browsers run in: as root it re-runs
// itself through Reexec, where Isolate must succeed, loopback must work,
// and any other address must be unreachable at once.
func TestIsolate(t *testing.T) {
	if !InNetns() {
		if os.Geteuid() != 0 {
			t.Skip("needs root for a network namespace")
		}
		if err := Reexec([]string{"-test.run=^TestIsolate$"}); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err := Isolate(); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second)
	if err != nil {
		t.Fatalf("loopback: %v", err)
	}
	c.Close()
	if c, err := net.DialTimeout("udp", "192.0.2.1:53", time.Second); err == nil {
		_, err = c.Write([]byte{0})
		c.Close()
		if err == nil {
			t.Fatal("a datagram to 192.0.2.1 was sent: the namespace has a route out")
		}
	}
}

func TestIsolatedSeesInterfaces(t *testing.T) {
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	external := false
	for _, i := range ifs {
		external = external || i.Flags&net.FlagLoopback == 0
	}
	if err := Isolated(); external != errors.Is(err, ErrNotIsolated) {
		t.Errorf("Isolated() = %v with a non-loopback interface: %v", err, external)
	}
}
