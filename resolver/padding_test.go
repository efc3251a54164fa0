package resolver

import (
	"fmt"
	"testing"

	"github.com/miekg/dns"
)

func TestPadQuery(t *testing.T) {
	for _, name := range []string{"a.", "public.lab.test.", "a-much-longer-label-to-change-the-size.secret.lab.test."} {
		for _, withOPT := range []bool{false, true} {
			m := query(name, dns.TypeHTTPS, 1)
			if withOPT {
				m.SetEdns0(4096, true)
			}
			if err := padQuery(m); err != nil {
				t.Fatal(err)
			}
			b := packed(t, m)
			if len(b)%queryPadBlock != 0 || !hasPadding(m) {
				t.Errorf("%s opt=%v: %d octets, padded=%v", name, withOPT, len(b), hasPadding(m))
			}
			if err := padQuery(m); err != nil || len(packed(t, m)) != len(b) {
				t.Errorf("%s: padding twice changed the size", name)
			}
		}
	}
}

func TestPadResponse(t *testing.T) {
	l := newLab(t)
	for _, n := range []int{0, 1, 12, 29} { // response sizes around block edges
		req := query("big.lab.test.", dns.TypeTXT, 1)
		req.SetEdns0(1232, false)
		padQuery(req)
		resp := new(dns.Msg).SetReply(req)
		for i := range n {
			resp.Answer = append(resp.Answer, l.h.rrs[2+i])
		}
		// The handler left EDNS out: padResponse adds it.
		if err := padResponse(req, resp); err != nil {
			t.Fatal(err)
		}
		if b := packed(t, resp); len(b)%responsePadBlock != 0 {
			t.Errorf("%d answers: response of %d octets", n, len(b))
		}
		// An unpadded query gets any padding removed.
		plain := query("big.lab.test.", dns.TypeTXT, 1)
		plain.SetEdns0(1232, false)
		if err := padResponse(plain, resp); err != nil || hasPadding(resp) {
			t.Errorf("padding kept for an unpadded query: %v", err)
		}
	}
}

func TestPadTooLarge(t *testing.T) {
	req := query("x.lab.test.", dns.TypeTXT, 1)
	padQuery(req)
	resp := new(dns.Msg).SetReply(req)
	resp.Compress = false
	for i := 0; len(packed(t, resp)) < 65535-300; i++ {
		rr, _ := dns.NewRR(fmt.Sprintf(`x.lab.test. 1 IN TXT "%0250d"`, i))
		resp.Answer = append(resp.Answer, rr)
	}
	if err := padResponse(req, resp); err != nil {
		t.Fatal(err)
	}
	if hasPadding(resp) && len(packed(t, resp)) > 65535 {
		t.Fatalf("padded past 65535 octets")
	}
	if err := padTo(query("y.", dns.TypeA, 1), 128); err == nil {
		t.Error("PadTo without OPT succeeded")
	}
}
