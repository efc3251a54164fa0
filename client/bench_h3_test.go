package client

import (
	"net"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/echlab/echlab/server"
)

// echlabServer starts the echlab server (server.Start with HTTP/3 and one
// ECH key, what `echlab run` and `echlab server --h3` use) and a zone that
// publishes it, and returns the URL to fetch and the options (mode) to
// fetch it with: over HTTP/3 at the UDP port, else at the TCP one.
func echlabServer(t testing.TB, mode Mode, h3 bool) (string, Options) {
	t.Helper()
	key, list := newKey(t, 1)
	s, err := server.Start(server.Config{Keys: server.NewStaticKeys(key), HTTP3: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	addr := s.Addr()
	if h3 {
		addr = s.UDPAddr()
	}
	_, p, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(p)
	// A non-443 port is looked up at _PORT._https.NAME (RFC 9460 §9.1).
	z := newZone(t, echRecord("_"+p+"._https.secret.lab.test.", "secret.lab.test.", port, list, "h3,h2"),
		"secret.lab.test. 60 IN A 127.0.0.1")
	dnsAddr := z.startUDP(t)
	o := Options{Resolver: udpExchanger{dnsAddr}, DNSTransport: "udp", DNSServer: dnsAddr,
		RootCAs: s.CA().Pool(), Mode: mode, HTTP3: h3}
	return "https://secret.lab.test:" + p + "/api/conn", o
}

// benchServerFetch measures a whole fetch (DNS over UDP, connect,
// handshake, GET /api/conn) against the echlab server. ECH on and off are
// the same server and the same client; only the client's Mode differs.
// ECHLAB_BENCH_GROUPS picks the key exchange groups (e.g. x25519).
func benchServerFetch(b *testing.B, mode Mode, h3 bool) {
	u, o := echlabServer(b, mode, h3)
	if g := os.Getenv("ECHLAB_BENCH_GROUPS"); g != "" {
		var err error
		if o.Groups, err = ParseGroups(g); err != nil {
			b.Fatal(err)
		}
	}
	hs := make([]time.Duration, 0, b.N)
	var total time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := mustFetch(b, u, o)
		if (r.ECH == ECHAccepted) != (mode == ModeECH) {
			b.Fatalf("mode %s: ech=%s", mode, r.ECH)
		}
		hs = append(hs, r.HandshakeTime)
		total += r.Total
	}
	b.StopTimer()
	// A mean hides a few slow handshakes (a lost packet's PTO) among many
	// fast ones: report the median and the slowest too.
	slices.Sort(hs)
	var sum time.Duration
	for _, d := range hs {
		sum += d
	}
	b.ReportMetric(float64(sum.Microseconds())/float64(b.N), "handshake-µs/op")
	b.ReportMetric(float64(hs[len(hs)/2].Microseconds()), "handshake-p50-µs")
	b.ReportMetric(float64(hs[len(hs)-1].Microseconds()), "handshake-max-µs")
	b.ReportMetric(float64(total.Microseconds())/float64(b.N), "total-µs/op")
}

func BenchmarkServerFetchECHH3(b *testing.B)      { benchServerFetch(b, ModeECH, true) }
func BenchmarkServerFetchBaselineH3(b *testing.B) { benchServerFetch(b, ModeBaseline, true) }
func BenchmarkServerFetchECHH2(b *testing.B)      { benchServerFetch(b, ModeECH, false) }
func BenchmarkServerFetchBaselineH2(b *testing.B) { benchServerFetch(b, ModeBaseline, false) }
