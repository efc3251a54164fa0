package capture

import (
	"encoding/binary"
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
	"unsafe"

	"golang.org/x/sys/unix"
)

// startLive is StartLiveCapture on Linux: an AF_PACKET socket.
func startLive(iface string, ports []int, w io.Writer) (stop func() error, err error) {
	lc, err := startLiveCapture(iface, ports, w)
	if err != nil {
		return nil, err
	}
	return lc.stop, nil
}

// startLiveCapture is StartLiveCapture returning the capture itself.
func startLiveCapture(iface string, ports []int, w io.Writer) (*liveCapture, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, fmt.Errorf("lab: capture interface: %w", err)
	}
	if err := checkEthernet(iface); err != nil {
		return nil, err
	}
	loopback := ifi.Flags&net.FlagLoopback != 0
	fd, err := openPacketSocket(ifi.Index, ports, loopback)
	if err != nil {
		return nil, err
	}
	intf := ngInterfaceDesc{Name: iface, OS: runtime.GOOS, Link: LinkTypeEthernet,
		SnapLen: maxPacket, Filter: portFilter(ports)}
	nw, err := newNgWriter(w, ngSection{Hardware: runtime.GOARCH, OS: runtime.GOOS, Application: "echlab",
		Comment: LiveComment + " on " + iface}, intf)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("lab: writing pcapng header: %w", err)
	}
	lc := &liveCapture{fd: fd, w: nw, ports: map[uint16]bool{}, loopback: loopback}
	for _, p := range ports {
		lc.ports[uint16(p)] = true
	}
	lc.wg.Add(1)
	go lc.run()
	return lc, nil
}

// liveRcvBuf is the packet socket's receive buffer. Packets wait there
// until the reader writes them; loopback frames are charged at up to 64 KiB
// each (GSO super-packets), so the kernel's default of about 200 KiB
// overflows within a burst of a few big TLS records.
var liveRcvBuf = 64 << 20

// liveHold, when set (tests only), holds the reader until it is closed.
var liveHold chan struct{}

// openPacketSocket opens an AF_PACKET socket bound to one interface, with
// a kernel filter for ports (see liveFilter), a large receive buffer, and
// a receive timeout so that the reader notices stop. The socket is opened
// for no protocol and bound only once the filter is attached, so that no
// unfiltered packet is ever queued.
func openPacketSocket(ifindex int, ports []int, loopback bool) (fd int, err error) {
	fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		return -1, ErrNoPermission
	}
	if err != nil {
		return -1, fmt.Errorf("lab: packet socket: %w", err)
	}
	defer func() {
		if err != nil {
			unix.Close(fd)
		}
	}()
	prog, err := liveFilter(ports, loopback)
	if err != nil {
		return -1, err
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: (*unix.SockFilter)(unsafe.Pointer(&prog[0]))}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
		return -1, fmt.Errorf("lab: packet socket filter: %w", err)
	}
	// SO_RCVBUFFORCE passes net.core.rmem_max, which capturing as root
	// allows; with CAP_NET_RAW alone, SO_RCVBUF gets what rmem_max gives.
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, liveRcvBuf) != nil {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, liveRcvBuf); err != nil {
			return -1, fmt.Errorf("lab: packet socket SO_RCVBUF: %w", err)
		}
	}
	// A virtio_net_hdr before each frame says whether it is a GSO/TSO
	// super-packet, which run splits back into wire-sized packets; the
	// kernel stamps each packet as it passes the tap (SO_TIMESTAMPNS).
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
		return -1, fmt.Errorf("lab: packet socket PACKET_VNET_HDR: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		return -1, fmt.Errorf("lab: packet socket SO_TIMESTAMPNS: %w", err)
	}
	tv := unix.Timeval{Usec: 50_000}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return -1, fmt.Errorf("lab: packet socket timeout: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}); err != nil {
		return -1, fmt.Errorf("lab: binding packet socket: %w", err)
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

type liveCapture struct {
	fd       int
	w        *ngWriter
	ports    map[uint16]bool
	loopback bool
	done     atomic.Bool
	wg       sync.WaitGroup
	err      error
	once     sync.Once
	split    atomic.Int64 // GSO/TSO super-packets split (for tests)
	// seen and dropped are the kernel's counts (PACKET_STATISTICS) of the
	// frames that passed the filter and of those lost because the socket's
	// buffer was full, read once the reader has stopped.
	seen, dropped uint64
}

func (lc *liveCapture) run() {
	defer lc.wg.Done()
	if liveHold != nil {
		<-liveHold
	}
	buf := make([]byte, vnetHdrLen+maxPacket)
	oob := make([]byte, 128)
	var drainUntil time.Time
	for {
		if lc.done.Load() {
			// Draining after stop is bounded, even on a busy interface.
			if drainUntil.IsZero() {
				drainUntil = time.Now().Add(time.Second)
			} else if time.Now().After(drainUntil) {
				return
			}
		}
		n, oobn, _, from, err := unix.Recvmsg(lc.fd, buf, oob, 0)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			// Stop only once the socket has been idle for a read timeout
			// after stop was asked for: packets the kernel already queued
			// (the end of the last connection) are still written.
			if lc.done.Load() {
				return
			}
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
		if n < vnetHdrLen {
			continue
		}
		hdr, frame := parseVnetHdr(buf[:vnetHdrLen]), buf[vnetHdrLen:n]
		if !lc.wanted(frame) {
			continue
		}
		ts := kernelTime(oob[:oobn])
		for _, pkt := range splitGSO(frame, hdr) {
			if err := lc.w.writePacket(ts, pkt); err != nil {
				lc.err = fmt.Errorf("lab: writing pcapng: %w", err)
				return
			}
		}
		if len(frame) > 0 && hdr.gsoType&^gsoECN != gsoNone {
			lc.split.Add(1)
		}
	}
}

// kernelTime returns the SO_TIMESTAMPNS stamp of a received packet, or
// the time now when the kernel gave none.
func kernelTime(oob []byte) time.Time {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return time.Now()
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS && len(m.Data) >= 16 {
			sec := int64(binary.NativeEndian.Uint64(m.Data[0:8]))
			nsec := int64(binary.NativeEndian.Uint64(m.Data[8:16]))
			return time.Unix(sec, nsec)
		}
	}
	return time.Now()
}

func (lc *liveCapture) wanted(frame []byte) bool {
	p, ok := DecodeLink(LinkTypeEthernet, frame)
	if !ok {
		return false
	}
	return len(lc.ports) == 0 || lc.ports[p.Src.Port()] || lc.ports[p.Dst.Port()]
}

// stop ends the capture. Besides read and write errors, it reports
// (ErrDropped) packets the kernel dropped for want of buffer space: the
// capture is then missing packets of the connections it watched.
func (lc *liveCapture) stop() error {
	lc.once.Do(func() {
		lc.done.Store(true)
		lc.wg.Wait()
		if st, err := unix.GetsockoptTpacketStats(lc.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS); err == nil {
			// tp_packets already counts the dropped ones.
			lc.seen, lc.dropped = uint64(st.Packets), uint64(st.Drops)
		}
		unix.Close(lc.fd)
		if err := lc.w.Flush(); err != nil && lc.err == nil {
			lc.err = fmt.Errorf("lab: flushing pcapng: %w", err)
		}
		if lc.err == nil && lc.dropped > 0 {
			lc.err = fmt.Errorf("%w: the kernel dropped %d of %d packets (the capture socket's buffer was full): flows may be missing or cut",
				ErrDropped, lc.dropped, lc.seen)
		}
	})
	return lc.err
}

// vnetHdrLen is the size of struct virtio_net_hdr, which precedes each
// frame read from a packet socket with PACKET_VNET_HDR.
const vnetHdrLen = 10

// parseVnetHdr reads the struct virtio_net_hdr before a received frame.
func parseVnetHdr(b []byte) vnetHdr {
	e := binary.NativeEndian
	return vnetHdr{flags: b[0], gsoType: b[1], hdrLen: e.Uint16(b[2:]), gsoSize: e.Uint16(b[4:]),
		csumStart: e.Uint16(b[6:]), csumOffset: e.Uint16(b[8:])}
}

// portFilter describes ports, tcpdump style, for the pcapng interface block.
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
