package capture

import (
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"golang.org/x/net/bpf"
)

// frame builds an Ethernet frame carrying TCP or UDP over IPv4 or IPv6.
func frame(t *testing.T, v6, tcp bool, src, dst uint16, fragOff uint16) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{0, 0, 0, 0, 0, 0}, DstMAC: net.HardwareAddr{0, 0, 0, 0, 0, 0}}
	var l4 gopacket.SerializableLayer
	var netl gopacket.NetworkLayer
	proto := layers.IPProtocolUDP
	if tcp {
		proto = layers.IPProtocolTCP
	}
	if v6 {
		eth.EthernetType = layers.EthernetTypeIPv6
		ip := &layers.IPv6{Version: 6, NextHeader: proto, HopLimit: 64, SrcIP: net.IPv6loopback, DstIP: net.IPv6loopback}
		netl = ip
	} else {
		eth.EthernetType = layers.EthernetTypeIPv4
		ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: proto, SrcIP: net.IP{127, 0, 0, 1}, DstIP: net.IP{127, 0, 0, 1},
			FragOffset: fragOff, Options: nil}
		netl = ip
	}
	if tcp {
		l := &layers.TCP{SrcPort: layers.TCPPort(src), DstPort: layers.TCPPort(dst), SYN: true, Window: 1000}
		l.SetNetworkLayerForChecksum(netl)
		l4 = l
	} else {
		l := &layers.UDP{SrcPort: layers.UDPPort(src), DstPort: layers.UDPPort(dst)}
		l.SetNetworkLayerForChecksum(netl)
		l4 = l
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		eth, netl.(gopacket.SerializableLayer), l4, gopacket.Payload("hello")); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestLiveFilterKeepsOnlyListedPorts(t *testing.T) {
	ports := []int{53, 4443, 8853}
	raw, err := liveFilter(ports, false)
	if err != nil {
		t.Fatal(err)
	}
	prog, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatal("the filter does not disassemble")
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		v6, tcp  bool
		src, dst uint16
		frag     uint16
		keep     bool
	}{
		{"v4 udp to 53", false, false, 40000, 53, 0, true},
		{"v4 udp from 53", false, false, 53, 40000, 0, true},
		{"v4 tcp to 4443", false, true, 40000, 4443, 0, true},
		{"v4 tcp from 8853", false, true, 8853, 40001, 0, true},
		{"v4 tcp elsewhere", false, true, 40000, 443, 0, false},
		{"v4 udp elsewhere", false, false, 40000, 5353, 0, false},
		{"v4 later fragment", false, false, 1, 2, 100, true},
		{"v6 udp to 53", true, false, 40000, 53, 0, true},
		{"v6 tcp from 4443", true, true, 4443, 40000, 0, true},
		{"v6 tcp elsewhere", true, true, 40000, 80, 0, false},
	} {
		n, err := vm.Run(frame(t, c.v6, c.tcp, c.src, c.dst, c.frag))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if (n > 0) != c.keep {
			t.Errorf("%s: filter returned %d, want keep=%v", c.name, n, c.keep)
		}
	}
}

func TestLiveFilterManyPortsKeepsAll(t *testing.T) {
	var ports []int
	for p := range maxFilterPorts + 1 {
		ports = append(ports, 10000+p)
	}
	raw, err := liveFilter(ports, false)
	if err != nil {
		t.Fatal(err)
	}
	prog, _ := bpf.Disassemble(raw)
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := vm.Run(frame(t, false, true, 1, 2, 0)); n == 0 {
		t.Error("with more ports than the filter holds, frames must all pass to the capture's own check")
	}
	// The longest program that still filters by port assembles.
	if _, err := liveFilter(ports[:maxFilterPorts], true); err != nil {
		t.Errorf("%d ports: %v", maxFilterPorts, err)
	}
}
