package client

import (
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkFetchH3Hook: a whole ECH fetch over HTTP/3 against the echlab
// server, without and with OnClientHello (the client then reads its own
// first Initial through helloPacketConn). The handshake median must not
// move.
func BenchmarkFetchH3Hook(b *testing.B) {
	for _, hook := range []bool{false, true} {
		b.Run(map[bool]string{false: "off", true: "on"}[hook], func(b *testing.B) {
			u, o := echlabServer(b, ModeECH, true)
			var n atomic.Int64
			if hook {
				o.OnClientHello = func([]byte) { n.Add(1) }
			}
			hs := make([]time.Duration, 0, b.N)
			for b.Loop() {
				r := mustFetch(b, u, o)
				hs = append(hs, r.HandshakeTime)
			}
			if hook && n.Load() != int64(len(hs)) {
				b.Fatalf("%d randoms reported for %d fetches", n.Load(), len(hs))
			}
			slices.Sort(hs)
			b.ReportMetric(float64(hs[len(hs)/2].Microseconds()), "handshake-p50-µs")
		})
	}
}
