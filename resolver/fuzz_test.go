package resolver

import (
	"context"
	"testing"

	"github.com/miekg/dns"
)

// FuzzHandler feeds wire bytes through what a transport does: decode (a
// header-only message when the rest is malformed), Answer, truncate, pack.
// It must never panic, and every answer must pack and echo the query ID.
func FuzzHandler(f *testing.F) {
	for _, q := range []*dns.Msg{
		new(dns.Msg).SetQuestion("public.lab.test.", dns.TypeA),
		new(dns.Msg).SetQuestion("www.lab.test.", dns.TypeA).SetEdns0(1232, true),
		new(dns.Msg).SetQuestion("a.b.wild.lab.test.", dns.TypeANY),
		new(dns.Msg).SetQuestion("alias.lab.test.", dns.TypeHTTPS),
		new(dns.Msg).SetQuestion("big.lab.test.", dns.TypeTXT),
		new(dns.Msg).SetQuestion("loop1.lab.test.", dns.TypeA),
		new(dns.Msg).SetQuestion("example.com.", dns.TypeA),
	} {
		b, _ := q.Pack()
		f.Add(b)
	}
	f.Add([]byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0xc0, 0x0c})
	a := testAuthority(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		req := decodeQuery(b)
		if req == nil {
			return
		}
		resp := a.Answer(context.Background(), req, Meta{Transport: TransportUDP, UDPSize: 512})
		if resp == nil || resp.Id != req.Id || !resp.Response {
			t.Fatalf("bad response %v to %v", resp, req)
		}
		resp.Truncate(udpSize(req, defaultUDPSize))
		out, err := resp.Pack()
		if err != nil {
			t.Fatalf("response does not pack: %v\n%v", err, resp)
		}
		if len(out) > udpSize(req, defaultUDPSize) {
			t.Fatalf("%d octets over UDP limit %d", len(out), udpSize(req, defaultUDPSize))
		}
	})
}
