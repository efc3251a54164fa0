package observe

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"github.com/echlab/echlab/client"
	"github.com/echlab/echlab/internal/testutil"
	"github.com/echlab/echlab/lab/capture"
	"github.com/miekg/dns"
)

// TestRelay sends bytes both ways through the TCP and UDP relays and
// checks that they arrive intact and that the recording holds them.
func TestRelay(t *testing.T) {
	rec := capture.NewRecorder()
	obs := &capture.Observer{WrapConn: rec.WrapConn, WrapPacketConn: rec.WrapPacketConn}
	tcpBackend, got := tcpEcho(t)
	udpBackend := dnsEcho(t)
	addr, err := obs.RelayPair("https/test", tcpBackend, udpBackend)
	if err != nil {
		t.Fatal(err)
	}

	// TCP: a real ClientHello, then 256 KiB of random bytes, half-closed;
	// the backend echoes everything back and closes.
	hello := clientHelloFor(t, "relay.lab.test")
	payload := make([]byte, 256<<10)
	rand.Read(payload)
	sent := append(append([]byte(nil), hello...), payload...)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		c.Write(sent)
		c.(*net.TCPConn).CloseWrite()
	}()
	back, err := io.ReadAll(c)
	c.Close()
	if err != nil || !bytes.Equal(back, sent) {
		t.Fatalf("TCP echo through the relay: %d of %d bytes, equal %v, %v", len(back), len(sent), bytes.Equal(back, sent), err)
	}
	if b := <-got; !bytes.Equal(b, sent) {
		t.Fatalf("backend got %d bytes, want the %d sent", len(b), len(sent))
	}

	// UDP: a DNS query and its answer.
	m := new(dns.Msg)
	m.SetQuestion("relay.lab.test.", dns.TypeHTTPS)
	resp, err := dns.Exchange(m, addr)
	if err != nil || resp.Id != m.Id || len(resp.Question) != 1 || resp.Question[0].Name != "relay.lab.test." {
		t.Fatalf("UDP exchange through the relay: %v, %v", resp, err)
	}

	time.Sleep(50 * time.Millisecond)
	if err := obs.Close(); err != nil {
		t.Fatal(err)
	}
	var pcap bytes.Buffer
	if err := rec.WritePcapng(&pcap); err != nil {
		t.Fatal(err)
	}
	rep, err := Compare(&pcap, CompareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var sawSNI, sawDNS bool
	for _, f := range rep.Flows {
		if f.Server.Port() != port(addr) {
			t.Errorf("flow %d to %v: the recording should show only client ↔ relay", f.ID, f.Server)
		}
		sawSNI = sawSNI || f.SNI == "relay.lab.test"
		for _, d := range f.DNS {
			sawDNS = sawDNS || d.Name == "relay.lab.test." && d.Response
		}
	}
	if !sawSNI || !sawDNS {
		t.Errorf("recording: SNI seen %v, DNS answer seen %v; flows %+v", sawSNI, sawDNS, rep.Flows)
	}
}

// tcpEcho starts a TCP server that echoes one connection and reports what
// it received.
func tcpEcho(t *testing.T) (string, chan []byte) {
	got := make(chan []byte, 1)
	addr := testutil.ServeOnce(t, func(c net.Conn) {
		var all bytes.Buffer
		io.Copy(io.MultiWriter(c, &all), c)
		c.(*net.TCPConn).CloseWrite()
		got <- all.Bytes()
	})
	return addr, got
}

// dnsEcho starts a UDP server that answers every DNS query with an empty
// NOERROR response.
func dnsEcho(t *testing.T) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			m := new(dns.Msg)
			if m.Unpack(buf[:n]) != nil {
				continue
			}
			r := new(dns.Msg)
			r.SetReply(m)
			b, _ := r.Pack()
			pc.WriteTo(b, from)
		}
	}()
	return pc.LocalAddr().String()
}

// clientHelloFor returns crypto/tls's ClientHello records for name.
func clientHelloFor(t *testing.T, name string) []byte {
	records, err := client.CaptureClientHello(&tls.Config{ServerName: name})
	if err != nil {
		t.Fatal(err)
	}
	return records
}

// BenchmarkRelayTCP measures a round trip of 64 KiB through a TCP relay,
// with and without recording.
func BenchmarkRelayTCP(b *testing.B) {
	for _, recorded := range []bool{false, true} {
		name := map[bool]string{false: "plain", true: "recorded"}[recorded]
		b.Run(name, func(b *testing.B) {
			obs := &capture.Observer{}
			if recorded {
				rec := capture.NewRecorder()
				obs.WrapConn = rec.WrapConn
			}
			defer obs.Close()
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					go func() { io.Copy(c, c); c.Close() }()
				}
			}()
			addr, err := obs.RelayTCP("https/bench", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			buf := make([]byte, 64<<10)
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				if _, err := c.Write(buf); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
