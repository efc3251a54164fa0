package interop

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
)

// NetnsEnv is set in the environment of a program started by Reexec, so
// that it knows it runs in the fresh network namespace.
const NetnsEnv = "ECHLAB_INTEROP_NETNS"

// InNetns reports whether this process was started by Reexec.
func InNetns() bool { return os.Getenv(NetnsEnv) == "1" }

// Isolate brings the loopback interface up and checks that it is the only
// interface: nothing a browser sends can leave the machine.
func Isolate() error {
	if err := exec.Command("ip", "link", "set", "lo", "up").Run(); err != nil {
		return fmt.Errorf("%w: ip link set lo up: %v", ErrNotIsolated, err)
	}
	return Isolated()
}

// UnsegmentUDP turns off UDP segmentation offload on the namespace's
// loopback (`ethtool -K lo tx-udp-segmentation off`). Browsers (Firefox's
// QUIC stack) and quic-go send several datagrams in one sendmsg with
// UDP_SEGMENT; on lo a packet socket then sees one super-packet whose
// payload is the datagrams glued together, and the capture loses the
// second Initial. With the offload off the kernel splits them before the
// tap, so the capture holds the datagrams an on-path observer would see.
// Call it only in the namespace (see Reexec); it needs ethtool.
func UnsegmentUDP() error {
	if _, err := exec.LookPath("ethtool"); err != nil {
		return fmt.Errorf("%w: ethtool is not installed (apt-get install -y ethtool): the capture would hold QUIC GSO super-packets", ErrTool)
	}
	if out, err := exec.Command("ethtool", "-K", "lo", "tx-udp-segmentation", "off").CombinedOutput(); err != nil {
		return fmt.Errorf("interop: ethtool -K lo tx-udp-segmentation off: %v: %s", err, out)
	}
	return nil
}

// Isolated checks that every network interface is a loopback interface
// and that loopback is up. Elsewhere than on Linux, which has no network
// namespaces to isolate the browsers in, it returns an error wrapping
// errors.ErrUnsupported.
func Isolated() error {
	if runtime.GOOS != "linux" {
		return errNeedsLinux
	}
	ifs, err := net.Interfaces()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNotIsolated, err)
	}
	up := false
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback == 0 {
			return fmt.Errorf("%w: interface %s is not loopback", ErrNotIsolated, i.Name)
		}
		up = up || i.Flags&net.FlagUp != 0
	}
	if !up {
		return fmt.Errorf("%w: loopback is down", ErrNotIsolated)
	}
	return nil
}
