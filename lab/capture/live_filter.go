package capture

import (
	"fmt"

	"golang.org/x/net/bpf"
)

// Kernel filter for live captures: the packet socket sees every frame of
// the interface (on loopback, all local traffic, and each packet twice).
// Filtering in the kernel keeps the socket's buffer for the packets the
// capture writes, so a burst of unrelated traffic cannot crowd them out.

const (
	packetOutgoing = 4       // PACKET_OUTGOING: skb->pkt_type of a loopback packet's sending copy
	filterKeep     = 0x40000 // bytes a matching frame keeps: more than any GSO super-packet
	maxFilterPorts = 48      // more ports than this: the filter keeps every TCP/UDP frame
)

// liveFilter is the classic BPF program for an Ethernet-framed packet
// socket: it drops the outgoing copy of loopback packets when dropOutgoing
// is set and, when ports is not empty, keeps only TCP and UDP over IPv4 or
// IPv6 whose source or destination port is listed (IPv4 fragments after
// the first, which carry no ports, and IPv6 with extension headers are
// kept: the capture's own check decides those). The capture checks every
// frame again, so the filter only has to be a superset of what it wants.
func liveFilter(ports []int, dropOutgoing bool) ([]bpf.RawInstruction, error) {
	var a bpfAsm
	if dropOutgoing {
		a.emit(bpf.LoadExtension{Num: bpf.ExtType})
		a.jeq(packetOutgoing, "drop", "")
	}
	if len(ports) == 0 || len(ports) > maxFilterPorts {
		a.emit(bpf.RetConstant{Val: filterKeep})
		a.label("drop")
		a.emit(bpf.RetConstant{Val: 0})
		return a.assemble()
	}
	a.emit(bpf.LoadAbsolute{Off: 12, Size: 2}) // EtherType
	a.jeq(0x0800, "v4", "")
	a.jeq(0x86dd, "v6", "drop")

	a.label("v4")
	a.emit(bpf.LoadAbsolute{Off: 23, Size: 1}) // protocol
	a.jeq(6, "v4ports", "")
	a.jeq(17, "v4ports", "drop")
	a.label("v4ports")
	a.emit(bpf.LoadAbsolute{Off: 20, Size: 2}) // flags and fragment offset
	a.jset(0x1fff, "keep", "")
	a.emit(bpf.LoadMemShift{Off: 14}) // X = IPv4 header length
	a.emit(bpf.LoadIndirect{Off: 14, Size: 2})
	a.ports(ports, "keep")
	a.emit(bpf.LoadIndirect{Off: 16, Size: 2})
	a.ports(ports, "keep")
	a.emit(bpf.RetConstant{Val: 0})

	a.label("v6")
	a.emit(bpf.LoadAbsolute{Off: 20, Size: 1}) // next header
	a.jeq(6, "v6ports", "")
	a.jeq(17, "v6ports", "keep")
	a.label("v6ports")
	a.emit(bpf.LoadAbsolute{Off: 54, Size: 2})
	a.ports(ports, "keep")
	a.emit(bpf.LoadAbsolute{Off: 56, Size: 2})
	a.ports(ports, "keep")

	a.label("drop")
	a.emit(bpf.RetConstant{Val: 0})
	a.label("keep")
	a.emit(bpf.RetConstant{Val: filterKeep})
	return a.assemble()
}

// bpfAsm assembles classic BPF with named jump targets ("" is the next
// instruction).
type bpfAsm struct {
	prog   []bpf.Instruction
	jumps  map[int][2]string
	labels map[string]int
}

func (a *bpfAsm) emit(i bpf.Instruction) { a.prog = append(a.prog, i) }

func (a *bpfAsm) label(name string) {
	if a.labels == nil {
		a.labels = map[string]int{}
	}
	a.labels[name] = len(a.prog)
}

func (a *bpfAsm) jump(cond bpf.JumpTest, val uint32, t, f string) {
	if a.jumps == nil {
		a.jumps = map[int][2]string{}
	}
	a.jumps[len(a.prog)] = [2]string{t, f}
	a.emit(bpf.JumpIf{Cond: cond, Val: val})
}

func (a *bpfAsm) jeq(val uint32, t, f string)  { a.jump(bpf.JumpEqual, val, t, f) }
func (a *bpfAsm) jset(val uint32, t, f string) { a.jump(bpf.JumpBitsSet, val, t, f) }

// ports jumps to target when the accumulator is one of ports.
func (a *bpfAsm) ports(ports []int, target string) {
	for _, p := range ports {
		a.jeq(uint32(uint16(p)), target, "")
	}
}

func (a *bpfAsm) assemble() ([]bpf.RawInstruction, error) {
	for i, tf := range a.jumps {
		j := a.prog[i].(bpf.JumpIf)
		var skips [2]uint8
		for k, label := range tf {
			if label == "" {
				continue
			}
			to, ok := a.labels[label]
			if !ok || to <= i || to-i-1 > 255 {
				return nil, fmt.Errorf("capture: filter jump %d to %q (%d) out of range", i, label, to)
			}
			skips[k] = uint8(to - i - 1)
		}
		j.SkipTrue, j.SkipFalse = skips[0], skips[1]
		a.prog[i] = j
	}
	return bpf.Assemble(a.prog)
}
