package lab

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
	"golang.org/x/sys/unix"
)

// ErrNoPermission means the process may not open a packet socket (it needs
// root or CAP_NET_RAW). Use a Recorder instead.
var ErrNoPermission = errors.New("lab: live capture needs root or CAP_NET_RAW")

// LiveComment starts the section header comment of live captures.
const LiveComment = "echlab live capture"

// StartLiveCapture captures the packets of an Ethernet-framed interface
// ("lo" frames are Ethernet with zero MACs) with a Linux AF_PACKET socket,
// keeps the TCP and UDP packets to or from one of ports (all of them when
// ports is empty), and writes them to w as pcapng. stop ends the capture,
// flushes w and reports the first error. Without the privilege it returns
// ErrNoPermission.
func StartLiveCapture(iface string, ports []int, w io.Writer) (stop func() error, err error) {
	if runtime.GOOS != "linux" {
		return nil, fmt.Errorf("lab: live capture works on Linux only: %w", errors.ErrUnsupported)
	}
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, fmt.Errorf("lab: capture interface: %w", err)
	}
	if err := checkEthernet(iface); err != nil {
		return nil, err
	}
	fd, err := openPacketSocket(ifi.Index)
	if err != nil {
		return nil, err
	}
	intf := pcapgo.NgInterface{Name: iface, OS: runtime.GOOS, LinkType: layers.LinkTypeEthernet,
		TimestampResolution: 9, SnapLength: maxPacket, Filter: portFilter(ports)}
	nw, err := pcapgo.NewNgWriterInterface(w, intf, pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{
		Hardware: runtime.GOARCH, OS: runtime.GOOS, Application: "echlab", Comment: LiveComment + " on " + iface}})
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("lab: writing pcapng header: %w", err)
	}
	lc := &liveCapture{fd: fd, w: nw, ports: map[uint16]bool{}, loopback: ifi.Flags&net.FlagLoopback != 0}
	for _, p := range ports {
		lc.ports[uint16(p)] = true
	}
	lc.wg.Add(1)
	go lc.run()
	return lc.stop, nil
}

// openPacketSocket opens an AF_PACKET socket bound to one interface, with
// a receive timeout so that the reader notices stop.
func openPacketSocket(ifindex int) (int, error) {
	proto := int(htons(unix.ETH_P_ALL))
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		return -1, ErrNoPermission
	}
	if err != nil {
		return -1, fmt.Errorf("lab: packet socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("lab: binding packet socket: %w", err)
	}
	tv := unix.Timeval{Usec: 50_000}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("lab: packet socket timeout: %w", err)
	}
	return fd, nil
}

// checkEthernet refuses interfaces whose frames are not Ethernet (or
// loopback, which Linux frames as Ethernet): ARPHRD_ETHER is 1 and
// ARPHRD_LOOPBACK 772 in /sys/class/net/IFACE/type.
func checkEthernet(iface string) error {
	b, err := os.ReadFile(filepath.Join("/sys/class/net", iface, "type"))
	if err != nil {
		return nil // no sysfs: let the socket decide
	}
	switch t := strings.TrimSpace(string(b)); t {
	case "1", "772":
		return nil
	default:
		return fmt.Errorf("lab: %s has link type ARPHRD %s, not Ethernet or loopback: %w", iface, t, errors.ErrUnsupported)
	}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func portFilter(ports []int) string {
	if len(ports) == 0 {
		return ""
	}
	s := "port " + fmt.Sprint(ports[0])
	for _, p := range ports[1:] {
		s += " or port " + fmt.Sprint(p)
	}
	return s
}

type liveCapture struct {
	fd       int
	w        *pcapgo.NgWriter
	ports    map[uint16]bool
	loopback bool
	done     atomic.Bool
	wg       sync.WaitGroup
	err      error
	once     sync.Once
}

func (lc *liveCapture) run() {
	defer lc.wg.Done()
	buf := make([]byte, maxPacket)
	for !lc.done.Load() {
		n, from, err := unix.Recvfrom(lc.fd, buf, 0)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			lc.err = fmt.Errorf("lab: reading packet socket: %w", err)
			return
		}
		// On a loopback interface every packet shows up twice: once going
		// out and once coming in. Keep the incoming copy, as tcpdump does.
		if sll, ok := from.(*unix.SockaddrLinklayer); ok && lc.loopback && sll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		if !lc.wanted(buf[:n]) {
			continue
		}
		ci := gopacket.CaptureInfo{Timestamp: time.Now(), CaptureLength: n, Length: n}
		if err := lc.w.WritePacket(ci, buf[:n]); err != nil {
			lc.err = fmt.Errorf("lab: writing pcapng: %w", err)
			return
		}
	}
}

func (lc *liveCapture) wanted(frame []byte) bool {
	p, ok := decodeLink(layers.LinkTypeEthernet, frame)
	if !ok {
		return false
	}
	return len(lc.ports) == 0 || lc.ports[p.src.Port()] || lc.ports[p.dst.Port()]
}

func (lc *liveCapture) stop() error {
	lc.once.Do(func() {
		lc.done.Store(true)
		lc.wg.Wait()
		unix.Close(lc.fd)
		if err := lc.w.Flush(); err != nil && lc.err == nil {
			lc.err = fmt.Errorf("lab: flushing pcapng: %w", err)
		}
	})
	return lc.err
}
