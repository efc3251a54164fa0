package quicinitial

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/echlab/echlab/internal/labtest"
	"github.com/quic-go/quic-go"
)

// sentConn keeps a copy of every datagram the client sends.
type sentConn struct {
	net.PacketConn
	mu   sync.Mutex
	sent [][]byte
}

func (c *sentConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	c.mu.Lock()
	c.sent = append(c.sent, bytes.Clone(b))
	c.mu.Unlock()
	return c.PacketConn.WriteTo(b, addr)
}

// TestHelloQuicGo reads the random from the Initials of real quic-go
// clients (v1 and v2, with and without ECH) against a quic-go server. The
// oracle is crypto/tls's key log: without ECH it carries the random read
// from the wire; with ECH accepted it carries the inner random, which must
// differ from the outer one on the wire.
func TestHelloQuicGo(t *testing.T) {
	l := labtest.NewTLS(t)
	for _, v := range []quic.Version{quic.Version1, quic.Version2} {
		for _, useECH := range []bool{false, true} {
			sent, logged := quicGoHandshake(t, l, v, useECH)
			var q Hello
			var random []byte
			for _, d := range sent {
				q.Add(d)
				if random = q.Random(); random != nil {
					break
				}
			}
			if random == nil {
				t.Fatalf("%v ECH %v: no random in %d datagrams", v, useECH, len(sent))
			}
			if same := bytes.Equal(random, logged); same == useECH {
				t.Errorf("%v ECH %v: wire random %x, key log random %x", v, useECH, random, logged)
			}
		}
	}
}

// quicGoHandshake runs one quic-go handshake on loopback and returns the
// client's datagrams and the client random of its key log.
func quicGoHandshake(t *testing.T, l *labtest.TLS, v quic.Version, useECH bool) ([][]byte, []byte) {
	t.Helper()
	srvUDP, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	srv := &quic.Transport{Conn: srvUDP}
	t.Cleanup(func() { srv.Close(); srvUDP.Close() })
	qc := &quic.Config{Versions: []quic.Version{v}}
	ln, err := srv.Listen(l.Server, qc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go func() {
		if c, err := ln.Accept(ctx); err == nil {
			<-c.Context().Done()
		}
	}()
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	sc := &sentConn{PacketConn: udp}
	tr := &quic.Transport{Conn: sc}
	defer tr.Close()
	var keylog bytes.Buffer
	cfg := l.Client("secret.lab.test", useECH, "doq")
	cfg.KeyLogWriter = &keylog
	c, err := tr.Dial(ctx, srvUDP.LocalAddr(), cfg, qc)
	if err != nil {
		t.Fatalf("quic dial: %v", err)
	}
	if c.ConnectionState().TLS.ECHAccepted != useECH {
		t.Fatalf("ECH accepted %v", !useECH)
	}
	c.CloseWithError(0, "done")
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.sent, keylogRandom(t, keylog.String())
}

// keylogRandom is the client random of the CLIENT_HANDSHAKE_TRAFFIC_SECRET
// line of an NSS key log.
func keylogRandom(t *testing.T, log string) []byte {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && f[0] == "CLIENT_HANDSHAKE_TRAFFIC_SECRET" {
			return unhex(t, f[1])
		}
	}
	t.Fatalf("no CLIENT_HANDSHAKE_TRAFFIC_SECRET in %q", log)
	return nil
}
