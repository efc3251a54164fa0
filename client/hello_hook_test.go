package client

import (
	"bytes"
	"encoding/hex"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/echlab/echlab/internal/quicinitial"
	"github.com/echlab/echlab/internal/testutil"
)

// randoms collects what OnClientHello reports.
type randoms struct {
	mu  sync.Mutex
	got [][]byte
}

func (r *randoms) hook(random []byte) {
	r.mu.Lock()
	r.got = append(r.got, random)
	r.mu.Unlock()
}

func (r *randoms) list() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.got...)
}

// keyLogRandom returns the client random of the first line of key log kl
// with the label, or "".
func keyLogRandom(kl, label string) string {
	for _, line := range strings.Split(kl, "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == label {
			return f[1]
		}
	}
	return ""
}

// blackHoleUDP binds ip:port and reads nothing until asked: the Initials
// the client sends it wait in the socket buffer.
func blackHoleUDP(t *testing.T, ip net.IP, port int) *net.UDPConn {
	t.Helper()
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip, Port: port})
	if err != nil {
		t.Fatalf("black hole on %v:%d: %v", ip, port, err)
	}
	t.Cleanup(func() { udp.Close() })
	return udp
}

// initialRandom reads the datagrams waiting at udp until their Initials
// hold a ClientHello's random, decrypting them as an on-path observer
// would (keys from the DCID, RFC 9001 §5.2).
func initialRandom(t *testing.T, udp *net.UDPConn) []byte {
	t.Helper()
	udp.SetReadDeadline(time.Now().Add(5 * time.Second))
	var q quicinitial.Hello
	buf := make([]byte, 2048)
	for {
		n, _, err := udp.ReadFrom(buf)
		if err != nil {
			t.Fatalf("no ClientHello random at the black hole: %v", err)
		}
		q.Add(buf[:n])
		if r := q.Random(); r != nil {
			return r
		}
	}
}

// TestOnClientHelloQUICBlackHole: the first address is a UDP black hole,
// the second a real HTTP/3 server. The hook reports two distinct randoms:
// the first is the one in the Initial that reached the black hole (its
// handshake timed out, so crypto/tls never wrote a key log line for it),
// the second the one of the connection that worked. Without ECH the key
// log's random is the second; with ECH accepted the key log carries the
// inner random, and the hook the outer one.
func TestOnClientHelloQUICBlackHole(t *testing.T) {
	for _, useECH := range []bool{false, true} {
		name := map[bool]string{false: "baseline", true: "ech"}[useECH]
		t.Run(name, func(t *testing.T) {
			l := newLab(t)
			key, list := newKey(t, 21)
			port := startH3(t, l.serverTLS(echKeys(key)))
			hole := blackHoleUDP(t, net.IPv4(127, 0, 0, 2), port)
			z := newZone(t, echRecord("secret.lab.test.", ".", port, list, "h3"),
				"secret.lab.test. 60 IN A 127.0.0.2", "secret.lab.test. 60 IN A 127.0.0.1")
			o := l.opts(z.startUDP(t))
			o.HTTP3, o.HandshakeTimeout = true, 300*time.Millisecond
			if !useECH {
				o.Mode = ModeBaseline
			}
			var kl bytes.Buffer
			var rs randoms
			o.KeyLog, o.OnClientHello = &kl, rs.hook
			r := mustFetch(t, "https://secret.lab.test/", o)
			if r.RemoteAddr != "127.0.0.1:"+itoa(port) || (r.ECH == ECHAccepted) != useECH {
				t.Fatalf("fetched from %s, ECH %s", r.RemoteAddr, r.ECH)
			}
			got := rs.list()
			if len(got) != 2 || len(got[0]) != 32 || bytes.Equal(got[0], got[1]) {
				t.Fatalf("hook reported %x, want two distinct randoms", got)
			}
			if wire := initialRandom(t, hole); !bytes.Equal(got[0], wire) {
				t.Errorf("hook's first random %x, the black hole's Initial has %x", got[0], wire)
			}
			logged := keyLogRandom(kl.String(), "CLIENT_HANDSHAKE_TRAFFIC_SECRET")
			if (logged == hex.EncodeToString(got[1])) == useECH {
				t.Errorf("key log random %s, hook's second %x (ECH %v)", logged, got[1], useECH)
			}
		})
	}
}

// silentCapture accepts TCP connections on 127.0.0.1:0, never answers, and
// sends the first bytes of each on the channel.
func silentCapture(t *testing.T) (int, <-chan []byte) {
	t.Helper()
	first := make(chan []byte, 4)
	addr := testutil.ServeEach(t, func(c net.Conn) {
		buf := make([]byte, helloPrefix)
		if _, err := io.ReadFull(c, buf); err == nil {
			first <- buf
		}
		io.Copy(io.Discard, c)
	})
	_, p, _ := net.SplitHostPort(addr)
	port, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return port, first
}

// TestOnClientHelloTCPSilent: a TCP server that accepts and never answers.
// The handshake times out before any key log line, yet the hook reported
// the random of the ClientHello record the server received, with ECH (the
// outer random) and in GREASE mode.
func TestOnClientHelloTCPSilent(t *testing.T) {
	for _, mode := range []Mode{ModeECH, ModeGREASE} {
		t.Run(string(mode), func(t *testing.T) {
			l := newLab(t)
			_, list := newKey(t, 22)
			port, first := silentCapture(t)
			o := echWorld(t, l, port, list, "h2")
			o.Mode, o.HandshakeTimeout = mode, 200*time.Millisecond
			var kl bytes.Buffer
			var rs randoms
			o.KeyLog, o.OnClientHello = &kl, rs.hook
			if _, err := Fetch(ctxT(t), "https://secret.lab.test/", o); err == nil {
				t.Fatal("a silent server: no error")
			}
			var wire []byte
			select {
			case b := <-first:
				wire = ClientHelloRandom(b)
			case <-time.After(5 * time.Second):
				t.Fatal("the server read no ClientHello")
			}
			if got := rs.list(); len(got) != 1 || wire == nil || !bytes.Equal(got[0], wire) {
				t.Errorf("hook reported %x; the server read random %x", got, wire)
			}
			if strings.Contains(kl.String(), "TRAFFIC_SECRET") {
				t.Errorf("key log has traffic secrets after a timeout:\n%s", kl.String())
			}
		})
	}
}

// TestOnClientHelloTCPAccepted: over TCP with ECH accepted, the hook's one
// random is the outer one, the key log's ECH_CONFIG line's, not the inner
// one of the traffic secrets; without the hook nothing changes.
func TestOnClientHelloTCPAccepted(t *testing.T) {
	l := newLab(t)
	key, list := newKey(t, 23)
	port := startTLS(t, l.serverTLS(echKeys(key)))
	o := echWorld(t, l, port, list, "h2")
	var kl bytes.Buffer
	var rs randoms
	o.KeyLog, o.OnClientHello = &kl, rs.hook
	if r := mustFetch(t, "https://secret.lab.test/", o); r.ECH != ECHAccepted {
		t.Fatalf("ECH %s", r.ECH)
	}
	got := rs.list()
	outer, inner := keyLogRandom(kl.String(), "ECH_CONFIG"), keyLogRandom(kl.String(), "CLIENT_HANDSHAKE_TRAFFIC_SECRET")
	if len(got) != 1 || hex.EncodeToString(got[0]) != outer || outer == inner {
		t.Errorf("hook reported %x; key log outer %s inner %s", got, outer, inner)
	}
}
