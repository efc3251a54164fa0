package interop

import (
	"errors"
	"net"
	"os"
	"strings"
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

// TestUseResolvConf: in the namespace Reexec made, UseResolvConf points
// /etc/resolv.conf at the lab for this process (and what it starts), and
// the machine's /etc/resolv.conf is the same afterwards: the bind mount
// stayed in the child's mount namespace.
func TestUseResolvConf(t *testing.T) {
	if !InNetns() {
		if os.Geteuid() != 0 {
			t.Skip("needs root for a network and mount namespace")
		}
		before, err := os.ReadFile("/etc/resolv.conf")
		if err != nil {
			t.Skip("no /etc/resolv.conf")
		}
		if err := Reexec([]string{"-test.run=^TestUseResolvConf$"}); err != nil {
			t.Fatal(err)
		}
		if after, _ := os.ReadFile("/etc/resolv.conf"); string(after) != string(before) {
			t.Fatalf("the machine's /etc/resolv.conf changed:\n%s", after)
		}
		return
	}
	if err := UseResolvConf(t.TempDir(), "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "nameserver 127.0.0.1\n") || strings.Count(string(b), "nameserver") != 1 {
		t.Fatalf("/etc/resolv.conf in the namespace:\n%s", b)
	}
}
