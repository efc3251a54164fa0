package resolver

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func testZones(t testing.TB) []*Zone {
	t.Helper()
	var zones []*Zone
	for _, f := range []string{"testdata/lab.test.zone", "testdata/other.test.zone"} {
		z, err := LoadZoneFile(f, "")
		if err != nil {
			t.Fatal(err)
		}
		zones = append(zones, z)
	}
	return zones
}

func testAuthority(t testing.TB) *Authority {
	t.Helper()
	a, err := newAuthority(testZones(t))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func ask(a Handler, name string, qtype uint16) *dns.Msg {
	q := new(dns.Msg).SetQuestion(name, qtype)
	return a.Answer(context.Background(), q, Meta{Transport: TransportUDP, UDPSize: 512})
}

// rrString renders records compactly ("name TYPE rdata") for comparisons.
func rrStrings(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		f := strings.Fields(rr.String())
		out = append(out, f[0]+" "+f[3]+" "+strings.Join(f[4:], " "))
	}
	return out
}

func TestAnswerSemantics(t *testing.T) {
	a := testAuthority(t)
	tests := []struct {
		name   string
		qname  string
		qtype  uint16
		rcode  int
		aa     bool
		answer []string
		ns     []string // owner and type of authority records
		extra  []string
	}{
		{name: "A", qname: "public.lab.test.", qtype: dns.TypeA, aa: true,
			answer: []string{"public.lab.test. A 127.0.0.1"}},
		{name: "case insensitive", qname: "PuBlIc.LAB.test.", qtype: dns.TypeAAAA, aa: true,
			answer: []string{"public.lab.test. AAAA ::1"}},
		{name: "NXDOMAIN", qname: "nope.lab.test.", qtype: dns.TypeA, rcode: dns.RcodeNameError, aa: true,
			ns: []string{"lab.test. SOA"}},
		{name: "NODATA", qname: "public.lab.test.", qtype: dns.TypeMX, aa: true,
			ns: []string{"lab.test. SOA"}},
		{name: "CNAME chain", qname: "www.lab.test.", qtype: dns.TypeA, aa: true,
			answer: []string{"www.lab.test. CNAME alias1.lab.test.", "alias1.lab.test. CNAME public.lab.test.", "public.lab.test. A 127.0.0.1"}},
		{name: "CNAME asked for", qname: "www.lab.test.", qtype: dns.TypeCNAME, aa: true,
			answer: []string{"www.lab.test. CNAME alias1.lab.test."}},
		{name: "CNAME chain to NODATA", qname: "www.lab.test.", qtype: dns.TypeTXT, aa: true,
			answer: []string{"www.lab.test. CNAME alias1.lab.test.", "alias1.lab.test. CNAME public.lab.test."},
			ns:     []string{"lab.test. SOA"}},
		{name: "CNAME loop", qname: "loop1.lab.test.", qtype: dns.TypeA, aa: true,
			answer: []string{"loop1.lab.test. CNAME loop2.lab.test.", "loop2.lab.test. CNAME loop1.lab.test."}},
		{name: "CNAME out of our zones", qname: "out.lab.test.", qtype: dns.TypeA, aa: true,
			answer: []string{"out.lab.test. CNAME elsewhere.example."}},
		{name: "wildcard", qname: "anything.wild.lab.test.", qtype: dns.TypeA, aa: true,
			answer: []string{"anything.wild.lab.test. A 127.0.0.2"}},
		{name: "wildcard deeper", qname: "a.b.wild.lab.test.", qtype: dns.TypeTXT, aa: true,
			answer: []string{`a.b.wild.lab.test. TXT "wildcard"`}},
		{name: "wildcard NODATA", qname: "x.wild.lab.test.", qtype: dns.TypeMX, aa: true,
			ns: []string{"lab.test. SOA"}},
		{name: "wildcard does not cover an empty non-terminal", qname: "deep.wild.lab.test.", qtype: dns.TypeA, aa: true,
			ns: []string{"lab.test. SOA"}},
		{name: "wildcard does not cover below an existing name", qname: "x.deep.wild.lab.test.", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, aa: true, ns: []string{"lab.test. SOA"}},
		{name: "ENT parent of wildcard", qname: "wild.lab.test.", qtype: dns.TypeA, aa: true,
			ns: []string{"lab.test. SOA"}},
		{name: "ANY gives one RRset", qname: "public.lab.test.", qtype: dns.TypeANY, aa: true,
			answer: []string{"public.lab.test. A 127.0.0.1"}},
		{name: "ANY at NXDOMAIN", qname: "nope.lab.test.", qtype: dns.TypeANY, rcode: dns.RcodeNameError, aa: true,
			ns: []string{"lab.test. SOA"}},
		{name: "HTTPS ServiceMode with target .", qname: "svc.lab.test.", qtype: dns.TypeHTTPS, aa: true,
			answer: []string{`svc.lab.test. HTTPS 1 . alpn="h2,h3"`},
			extra:  []string{"svc.lab.test. A 127.0.0.10"}},
		{name: "HTTPS AliasMode", qname: "alias.lab.test.", qtype: dns.TypeHTTPS, aa: true,
			answer: []string{"alias.lab.test. HTTPS 0 svc.lab.test."},
			extra:  []string{`svc.lab.test. HTTPS 1 . alpn="h2,h3"`, "svc.lab.test. A 127.0.0.10"}},
		{name: "SVCB with target", qname: "svcb.lab.test.", qtype: dns.TypeSVCB, aa: true,
			answer: []string{`svcb.lab.test. SVCB 1 backend.lab.test. port="8443"`},
			extra:  []string{"backend.lab.test. A 127.0.0.11", "backend.lab.test. AAAA ::11"}},
		{name: "NS with glue", qname: "lab.test.", qtype: dns.TypeNS, aa: true,
			answer: []string{"lab.test. NS ns1.lab.test."},
			extra:  []string{"ns1.lab.test. A 127.0.0.1"}},
		{name: "second zone", qname: "target.other.test.", qtype: dns.TypeA, aa: true,
			answer: []string{"target.other.test. A 127.0.0.20"}},
		{name: "second zone negative", qname: "x.other.test.", qtype: dns.TypeA, rcode: dns.RcodeNameError, aa: true,
			ns: []string{"other.test. SOA"}},
		{name: "REFUSED outside zones", qname: "example.com.", qtype: dns.TypeA, rcode: dns.RcodeRefused},
		{name: "REFUSED parent of zone", qname: "test.", qtype: dns.TypeA, rcode: dns.RcodeRefused},
		{name: "no zone transfer", qname: "lab.test.", qtype: dns.TypeAXFR, rcode: dns.RcodeRefused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ask(a, tt.qname, tt.qtype)
			if r.Rcode != tt.rcode {
				t.Errorf("rcode %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tt.rcode])
			}
			if r.Authoritative != tt.aa {
				t.Errorf("AA %v, want %v", r.Authoritative, tt.aa)
			}
			if !r.Response || len(r.Question) != 1 || r.Question[0].Name != tt.qname {
				t.Errorf("header/question not echoed: %v", r)
			}
			if got := rrStrings(r.Answer); !slices.Equal(got, tt.answer) {
				t.Errorf("answer\n got %q\nwant %q", got, tt.answer)
			}
			var ns []string
			for _, rr := range r.Ns {
				ns = append(ns, rr.Header().Name+" "+dns.TypeToString[rr.Header().Rrtype])
			}
			if !slices.Equal(ns, tt.ns) {
				t.Errorf("authority %q, want %q", ns, tt.ns)
			}
			if got := rrStrings(r.Extra); !slices.Equal(got, tt.extra) {
				t.Errorf("additional\n got %q\nwant %q", got, tt.extra)
			}
		})
	}
}

func TestNegativeTTL(t *testing.T) {
	a := testAuthority(t)
	// lab.test: SOA TTL 300, minimum 120; other.test: TTL 60, minimum 30.
	for name, want := range map[string]uint32{"nope.lab.test.": 120, "nope.other.test.": 30} {
		r := ask(a, name, dns.TypeA)
		if len(r.Ns) != 1 || r.Ns[0].Header().Ttl != want {
			t.Errorf("%s: authority %v, want SOA with TTL %d", name, r.Ns, want)
		}
	}
	// The zone's own SOA keeps its TTL.
	r := ask(a, "lab.test.", dns.TypeSOA)
	if len(r.Answer) != 1 || r.Answer[0].Header().Ttl != 300 {
		t.Errorf("SOA answer %v", r.Answer)
	}
}

func TestMalformedQueries(t *testing.T) {
	a := testAuthority(t)
	good := func() *dns.Msg { return new(dns.Msg).SetQuestion("public.lab.test.", dns.TypeA) }
	tests := []struct {
		name  string
		req   func() *dns.Msg
		rcode int
	}{
		{"no question", func() *dns.Msg { m := good(); m.Question = nil; return m }, dns.RcodeFormatError},
		{"two questions", func() *dns.Msg {
			m := good()
			m.Question = append(m.Question, m.Question[0])
			return m
		}, dns.RcodeFormatError},
		{"a response", func() *dns.Msg { m := good(); m.Response = true; return m }, dns.RcodeFormatError},
		{"opcode NOTIFY", func() *dns.Msg { m := good(); m.Opcode = dns.OpcodeNotify; return m }, dns.RcodeNotImplemented},
		{"opcode UPDATE", func() *dns.Msg { m := good(); m.Opcode = dns.OpcodeUpdate; return m }, dns.RcodeNotImplemented},
		{"answer section in query", func() *dns.Msg {
			m := good()
			rr, _ := dns.NewRR("x.lab.test. 1 IN A 1.2.3.4")
			m.Answer = []dns.RR{rr}
			return m
		}, dns.RcodeFormatError},
		{"two OPT records", func() *dns.Msg {
			m := good().SetEdns0(1232, false)
			m.Extra = append(m.Extra, dns.Copy(m.Extra[0]))
			return m
		}, dns.RcodeFormatError},
		{"EDNS version 1", func() *dns.Msg {
			m := good().SetEdns0(1232, false)
			m.IsEdns0().SetVersion(1)
			return m
		}, dns.RcodeBadVers},
		{"class CHAOS", func() *dns.Msg { m := good(); m.Question[0].Qclass = dns.ClassCHAOS; return m }, dns.RcodeRefused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := tt.req()
			r := a.Answer(context.Background(), req, Meta{Transport: TransportTCP})
			if r.Rcode != tt.rcode || !r.Response || r.Id != req.Id || len(r.Answer) != 0 {
				t.Errorf("got rcode %s id %d answer %v, want %s", dns.RcodeToString[r.Rcode], r.Id, r.Answer, dns.RcodeToString[tt.rcode])
			}
			if _, err := r.Pack(); err != nil {
				t.Errorf("response does not pack: %v", err)
			}
		})
	}
	if r := a.Answer(context.Background(), nil, Meta{}); r == nil || r.Rcode != dns.RcodeFormatError {
		t.Errorf("nil request: %v", r)
	}
}

func TestEDNSEcho(t *testing.T) {
	a := testAuthority(t)
	a.UDPSize = 1400
	q := new(dns.Msg).SetQuestion("public.lab.test.", dns.TypeA).SetEdns0(4096, true)
	r := a.Answer(context.Background(), q, Meta{Transport: TransportUDP})
	opt := r.IsEdns0()
	if opt == nil || opt.UDPSize() != 1400 || !opt.Do() {
		t.Fatalf("OPT %v, want size 1400 with DO echoed", opt)
	}
	r = ask(a, "public.lab.test.", dns.TypeA)
	if r.IsEdns0() != nil {
		t.Errorf("OPT in response to a query without EDNS")
	}
}

type fakeUpstream struct{ got *dns.Msg }

func (f *fakeUpstream) Exchange(_ context.Context, m *dns.Msg) (*dns.Msg, error) {
	f.got = m
	r := new(dns.Msg).SetReply(m)
	rr, _ := dns.NewRR(m.Question[0].Name + " 60 IN A 192.0.2.1")
	r.Answer = []dns.RR{rr}
	r.Id = 9999 // the Authority must restore the client's ID
	return r, nil
}

func TestForwardOnlyWhenConfigured(t *testing.T) {
	a := testAuthority(t)
	up := &fakeUpstream{}
	a.Forward = up
	q := new(dns.Msg).SetQuestion("example.com.", dns.TypeA)
	q.Id = 1234
	r := a.Answer(context.Background(), q, Meta{})
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || up.got == nil || r.Authoritative || !r.RecursionAvailable {
		t.Fatalf("forwarded answer %v", r)
	}
	if r.Id != 1234 {
		t.Errorf("response ID %d, want the query's 1234", r.Id)
	}
	q.RecursionDesired = false
	up.got = nil
	if r := a.Answer(context.Background(), q, Meta{}); r.Rcode != dns.RcodeRefused || up.got != nil {
		t.Errorf("RD=0 query forwarded: %v", r)
	}
	// In-zone names never go upstream.
	if r := ask(a, "public.lab.test.", dns.TypeA); !r.Authoritative || up.got != nil {
		t.Errorf("in-zone query forwarded")
	}
}

func BenchmarkAnswer(b *testing.B) {
	a := testAuthority(b)
	for _, q := range []struct {
		name  string
		qtype uint16
	}{{"public.lab.test.", dns.TypeA}, {"www.lab.test.", dns.TypeA}, {"svc.lab.test.", dns.TypeHTTPS}, {"x.wild.lab.test.", dns.TypeTXT}, {"nope.lab.test.", dns.TypeA}} {
		req := new(dns.Msg).SetQuestion(q.name, q.qtype)
		b.Run(q.name+dns.TypeToString[q.qtype], func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				a.Answer(context.Background(), req, Meta{Transport: TransportUDP})
			}
		})
	}
}
