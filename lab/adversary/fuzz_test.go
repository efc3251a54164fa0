package adversary

import (
	"bytes"
	"testing"

	"github.com/echlab/echlab/lab/capture"
	"github.com/miekg/dns"
)

// FuzzAdversary feeds arbitrary bytes to Stream and Datagram of every
// DefaultGrid column (and the name-, address- and size-argument forms),
// on an HTTPS, DoH, DoH3 or Do53 relay over TCP or UDP (pick), either
// way: nothing may panic, and a rewritten DNS answer must unpack with the
// same id and question. The seeds include real QUIC Initials. A fresh
// Adversary per input keeps the log small.
func FuzzAdversary(f *testing.F) {
	h := newHellos(f, "secret.lab.test")
	list := h.echList
	for _, seed := range [][]byte{h.plain, h.ech, h.grease, h.ech[:200]} {
		f.Add(seed, true, uint8(0x80))
	}
	// A quic-go client's ClientHello with ECH, its two Initial datagrams
	// coalesced into one: HTTP/3 (pick 0) and DoH3 (pick 2) over UDP.
	q := newQUICHellos(f)
	coalesced := append(bytes.Clone(q.ech[0]), q.ech[1]...)
	f.Add(coalesced, true, uint8(0))
	f.Add(coalesced, true, uint8(2))
	f.Add(q.plain[0], true, uint8(0))
	https := reply(query(svcName, dns.TypeHTTPS), []dns.RR{httpsRR(list)}, rr(f, "public.lab.test. 60 IN A 127.0.0.1"))
	a := reply(query("secret.lab.test.", dns.TypeA), []dns.RR{rr(f, "secret.lab.test. 60 IN A 127.0.0.1")})
	for _, m := range []*dns.Msg{https, a} {
		f.Add(pack(f, m), false, uint8(3))
	}
	f.Add(pack(f, query("secret.lab.test.", dns.TypeA)), true, uint8(0x83))
	specs := append([]string{"block-sni *.lab.test rst", "block-doh 127.0.0.1:8443",
		"block-doh resolver.lab.test", "block-ech-size 1,400", "drop-udp 8443",
		"poison secret.lab.test 2001:db8::1"}, DefaultGrid...)
	var cols [][]Policy
	for _, s := range specs {
		cols = append(cols, mustParse(f, s).Policies())
	}
	roles := []capture.Role{"https/shared", "dns/doh", "dns/doh3", capture.RoleDo53}
	f.Fuzz(func(t *testing.T, b []byte, toServer bool, pick uint8) {
		role, proto := roles[int(pick)%len(roles)], []string{"udp", "tcp"}[pick>>7]
		in := new(dns.Msg)
		inErr := in.Unpack(b)
		for _, col := range cols {
			adv := New(col)
			if proto == "tcp" && role != capture.RoleDo53 {
				adv.Stream(flow(role, proto), b)
				continue
			}
			out, _ := adv.Datagram(flow(role, proto), toServer, b)
			if role != capture.RoleDo53 || inErr != nil || len(out) == 0 || &out[0] == &b[0] {
				continue
			}
			m := new(dns.Msg)
			if err := m.Unpack(out); err != nil || m.Id != in.Id || len(m.Question) != len(in.Question) {
				t.Fatalf("%v rewrote %x into %x (%v)", adv.Policies(), b, out, err)
			}
		}
	})
}
