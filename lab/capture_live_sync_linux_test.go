package lab

import (
	"bytes"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// TestLiveCaptureSync: once Sync returns, the capture has read every
// packet sent before it (each connection's opening and the client's FIN,
// with no pause in between), counts the openings, and never writes its
// marker. It needs root (CI runs as root).
func TestLiveCaptureSync(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("live capture needs root (or CAP_NET_RAW); run as root to test it")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(io.Discard, c); c.Close() }() //nolint:errcheck // drained
		}
	}()
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	var buf bytes.Buffer
	c, err := StartLive("lo", nil, &buf) // every port: the marker would be written
	if err != nil {
		t.Fatal(err)
	}
	const n = 5
	clients := map[uint16]bool{}
	for range n {
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		clients[uint16(conn.LocalAddr().(*net.TCPAddr).Port)] = true
		conn.Write([]byte("hello")) //nolint:errcheck // checked on the wire
		conn.Close()
	}
	if err := c.Sync(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	if got := c.TCPOpens(port); got != n {
		t.Errorf("TCPOpens(%d) = %d right after Sync, want %d", port, got, n)
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	r, err := pcapgo.NewNgReader(&buf, pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	fins, markers := 0, 0
	for {
		data, _, err := r.ReadPacketData()
		if err != nil {
			break
		}
		p, ok := decodeLink(layers.LinkTypeEthernet, data)
		switch {
		case !ok:
		case p.proto == 6 && p.dst.Port() == port && clients[p.src.Port()] && p.flags&tcpFIN != 0:
			fins++
		case p.proto == 17 && bytes.Equal(p.payload, []byte("echlab capture sync")):
			markers++
		}
	}
	if fins != n || markers != 0 {
		t.Errorf("capture holds %d client FINs (want %d) and %d sync markers (want 0)", fins, n, markers)
	}
}
