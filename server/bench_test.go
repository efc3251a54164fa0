package server

import (
	"crypto/tls"
	"net"
	"testing"

	"github.com/echlab/echlab/ech"
)

// benchHandshakes measures full TLS handshakes (no resumption) per second
// against addr with cfg; each iteration dials, handshakes and closes.
func benchHandshakes(b *testing.B, addr string, cfg *tls.Config, wantECH bool) {
	b.Helper()
	cfg = cfg.Clone()
	cfg.ClientSessionCache = nil
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		tc := tls.Client(c, cfg)
		if err := tc.Handshake(); err != nil {
			b.Fatal(err)
		}
		if tc.ConnectionState().ECHAccepted != wantECH {
			b.Fatalf("ECHAccepted = %v", !wantECH)
		}
		tc.Close()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "handshakes/s")
}

// BenchmarkHandshake compares ECH with no ECH on the same shared server,
// and the split relay with the shared server.
func BenchmarkHandshake(b *testing.B) {
	k := newKey(b, 1)
	s := startServer(b, Config{Keys: NewStaticKeys(k)})
	list := configList(b, k)
	b.Run("shared/ECH", func(b *testing.B) {
		benchHandshakes(b, s.Addr(), clientTLS(b, "secret.lab.test", list), true)
	})
	b.Run("shared/noECH", func(b *testing.B) {
		benchHandshakes(b, s.Addr(), clientTLS(b, "secret.lab.test", nil), false)
	})
	base := startServer(b, Config{})
	b.Run("baseline/noECH", func(b *testing.B) {
		benchHandshakes(b, base.Addr(), clientTLS(b, "secret.lab.test", nil), false)
	})
	backend := startServer(b, Config{Mode: "split-backend"})
	ks := &ech.KeySet{}
	ks.Add(k, true)
	sp, err := StartSplit(SplitConfig{Keys: ks, CA: testCA(b), Routes: Routes{"*": backend.Addr()}})
	if err != nil {
		b.Fatal(err)
	}
	defer sp.Close()
	b.Run("split/ECH", func(b *testing.B) {
		benchHandshakes(b, sp.Addr(), clientTLS(b, "secret.lab.test", list), true)
	})
	b.Run("split/passthrough", func(b *testing.B) {
		benchHandshakes(b, sp.Addr(), clientTLS(b, "secret.lab.test", nil), false)
	})
}
