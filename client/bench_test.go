package client

import (
	"os"
	"testing"
)

// benchFetch measures a whole fetch (DNS over UDP, connect, handshake,
// GET) against loopback servers.
func benchFetch(b *testing.B, mode Mode, h3 bool) {
	l := newLab(b)
	key, list := newKey(b, 1)
	var port int
	if h3 {
		port = startH3(b, l.serverTLS(echKeys(key)))
	} else {
		port = startTLS(b, l.serverTLS(echKeys(key)))
	}
	z := newZone(b, echRecord("secret.lab.test.", ".", port, list, "h2"), "secret.lab.test. 60 IN A 127.0.0.1")
	o := l.opts(z.startUDP(b))
	o.Mode, o.HTTP3 = mode, h3
	if g := os.Getenv("ECHLAB_BENCH_GROUPS"); g != "" {
		o.Groups, _ = ParseGroups(g)
	}
	var hs, total float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := mustFetch(b, "https://secret.lab.test/", o)
		hs += float64(r.HandshakeTime.Microseconds())
		total += float64(r.Total.Microseconds())
	}
	b.ReportMetric(hs/float64(b.N), "handshake-µs/op")
	b.ReportMetric(total/float64(b.N), "total-µs/op")
}

func BenchmarkFetchECHH2(b *testing.B)      { benchFetch(b, ModeECH, false) }
func BenchmarkFetchBaselineH2(b *testing.B) { benchFetch(b, ModeBaseline, false) }
func BenchmarkFetchECHH3(b *testing.B)      { benchFetch(b, ModeECH, true) }
func BenchmarkFetchBaselineH3(b *testing.B) { benchFetch(b, ModeBaseline, true) }
