package resolver

import (
	"bytes"
	"context"
	"testing"

	"github.com/miekg/dns"
)

// FuzzFastPathMatchesSlow feeds arbitrary bytes to the UDP fast path and
// to the slow path (decode, Answer, truncate, compress, pack): whenever
// the fast path answers, its bytes must be the slow path's. The authority
// (and its cache) is shared by all inputs, and each input is asked again
// with another ID, so answers compiled for one query are checked against
// the others that share their key.
func FuzzFastPathMatchesSlow(f *testing.F) {
	for _, q := range []*dns.Msg{
		new(dns.Msg).SetQuestion("public.lab.test.", dns.TypeA),
		new(dns.Msg).SetQuestion("PuBlIc.lab.test.", dns.TypeAAAA).SetEdns0(1232, true),
		new(dns.Msg).SetQuestion("www.lab.test.", dns.TypeA).SetEdns0(4096, false),
		new(dns.Msg).SetQuestion("a.b.wild.lab.test.", dns.TypeANY),
		new(dns.Msg).SetQuestion("svc.lab.test.", dns.TypeHTTPS).SetEdns0(512, false),
		new(dns.Msg).SetQuestion("big.lab.test.", dns.TypeTXT).SetEdns0(1232, false),
		new(dns.Msg).SetQuestion("nope.lab.test.", dns.TypeA),
		new(dns.Msg).SetQuestion("lab.test.", dns.TypeAXFR),
		new(dns.Msg).SetQuestion("example.com.", dns.TypeA),
	} {
		b, _ := q.Pack()
		f.Add(b)
		q.RecursionDesired = false
		b, _ = q.Pack()
		f.Add(b)
	}
	f.Add([]byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0})
	a := testAuthority(f)
	slow := HandlerFunc(a.Answer)
	var key [maxFastKey]byte
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, id := range []uint16{0, 0xbeef} {
			if len(b) >= 2 && id != 0 {
				b[0], b[1] = byte(id>>8), byte(id)
			}
			for _, maxSize := range []int{defaultUDPSize, 4096} {
				e, q := a.fastAnswer(b, maxSize, &key)
				if e == nil {
					continue
				}
				want := udpReply(context.Background(), slow, b, nil, maxSize)
				if got := appendFast(nil, e, q); !bytes.Equal(got, want) {
					t.Fatalf("query %x (max %d):\nfast %x\nslow %x", b, maxSize, got, want)
				}
			}
		}
	})
}
