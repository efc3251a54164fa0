package adversary

import (
	"bytes"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/lab/capture"
	"github.com/miekg/dns"
)

const svcName = "_8443._https.secret.lab.test."

// query is a query for name and qtype with EDNS(0), id 0x1234.
func query(name string, qtype uint16) *dns.Msg {
	q := new(dns.Msg).SetQuestion(name, qtype).SetEdns0(1232, false)
	q.Id = 0x1234
	return q
}

// reply is an authoritative answer to q with answer and extra records
// (before q's OPT), as the lab's resolver gives.
func reply(q *dns.Msg, answer []dns.RR, extra ...dns.RR) *dns.Msg {
	r := new(dns.Msg).SetReply(q)
	r.Authoritative, r.RecursionAvailable = true, true
	r.Answer = answer
	r.Extra = append(extra, r.Extra...)
	r.SetEdns0(1232, false)
	return r
}

// rr parses a record in zone file syntax.
func rr(t testing.TB, s string) dns.RR {
	t.Helper()
	r, err := dns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// httpsRR is the lab's published record: alpn, port and ech=list.
func httpsRR(list []byte) *dns.HTTPS {
	return &dns.HTTPS{SVCB: dns.SVCB{
		Hdr:      dns.RR_Header{Name: svcName, Rrtype: dns.TypeHTTPS, Class: dns.ClassINET, Ttl: 60},
		Priority: 1, Target: "public.lab.test.",
		Value: []dns.SVCBKeyValue{&dns.SVCBAlpn{Alpn: []string{"h3", "h2"}},
			&dns.SVCBPort{Port: 8443}, &dns.SVCBECHConfig{ECH: list}},
	}}
}

// echList is a real ECHConfigList.
func echList(t testing.TB) []byte {
	t.Helper()
	k, err := ech.GenerateKey(ech.KeyOptions{ConfigID: 3})
	if err != nil {
		t.Fatal(err)
	}
	l, err := ech.MarshalConfigList(k.Config.Raw)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func pack(t testing.TB, m *dns.Msg) []byte {
	t.Helper()
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rewritten runs b through a on a Do53 relay (answer direction) and
// checks that the result, when rewritten, is a valid reply to the same
// query: it unpacks, with the same header and question. It returns the
// unpacked result and whether it was rewritten.
func rewritten(t *testing.T, a *Adversary, proto string, b []byte) (*dns.Msg, bool) {
	t.Helper()
	orig := new(dns.Msg)
	if err := orig.Unpack(b); err != nil {
		t.Fatal(err)
	}
	out, v := a.Datagram(flow(capture.RoleDo53, proto), false, b)
	if v != capture.Pass {
		t.Fatalf("DNS answer: verdict %v, want pass", v)
	}
	m := new(dns.Msg)
	if err := m.Unpack(out); err != nil {
		t.Fatalf("rewritten answer does not unpack: %v", err)
	}
	if m.MsgHdr != orig.MsgHdr || !reflect.DeepEqual(m.Question, orig.Question) {
		t.Errorf("rewrite changed header or question: %+v %v, was %+v %v", m.MsgHdr, m.Question, orig.MsgHdr, orig.Question)
	}
	if m.IsEdns0() == nil {
		t.Error("rewrite lost the OPT record")
	}
	return m, &out[0] != &b[0]
}

func TestStripECH(t *testing.T) {
	list := echList(t)
	q := query(svcName, dns.TypeHTTPS)
	b := pack(t, reply(q, []dns.RR{httpsRR(list)}, rr(t, "public.lab.test. 60 IN A 127.0.0.1")))
	for _, proto := range []string{"udp", "tcp"} {
		a := mustParse(t, "strip-ech")
		m, changed := rewritten(t, a, proto, b)
		if !changed || len(m.Answer) != 1 {
			t.Fatalf("%s: not rewritten: %v", proto, m)
		}
		h := m.Answer[0].(*dns.HTTPS)
		if _, has := echParam(h); has || len(h.Value) != 2 || h.Target != "public.lab.test." {
			t.Errorf("%s: HTTPS RR after strip-ech: %v", proto, h)
		}
		d := lastDecision(t, a)
		if d.Action != "rewrite" || d.Policy != "strip-ech" || d.Detail != "removed ech from 1 HTTPS/SVCB RR" ||
			d.QName != strings.TrimSuffix(svcName, ".") || d.QType != "HTTPS" || a.Counts()["strip-ech"] != 1 {
			t.Errorf("%s: decision %+v", proto, d)
		}
	}
	// No ech: the answer passes as it came, logged as a plain pass.
	noECH := httpsRR(nil)
	noECH.Value = noECH.Value[:2]
	a := mustParse(t, "strip-ech")
	if _, changed := rewritten(t, a, "udp", pack(t, reply(q, []dns.RR{noECH}))); changed {
		t.Error("answer without ech rewritten")
	}
	if d := lastDecision(t, a); d.Action != "pass" || d.Policy != "" || a.Counts()["strip-ech"] != 0 {
		t.Errorf("decision %+v, counts %v", d, a.Counts())
	}
}

func echParam(h *dns.HTTPS) ([]byte, bool) {
	for _, kv := range h.Value {
		if e, ok := kv.(*dns.SVCBECHConfig); ok {
			return e.ECH, true
		}
	}
	return nil, false
}

func TestDropHTTPSRR(t *testing.T) {
	q := query(svcName, dns.TypeHTTPS)
	b := pack(t, reply(q, []dns.RR{httpsRR(echList(t))}, rr(t, "public.lab.test. 60 IN A 127.0.0.1")))
	a := mustParse(t, "drop-https-rr")
	m, changed := rewritten(t, a, "udp", b)
	if !changed || len(m.Answer) != 0 || m.Rcode != dns.RcodeSuccess || len(m.Extra) != 2 {
		t.Errorf("after drop-https-rr: %v", m)
	}
	if d := lastDecision(t, a); d.Detail != "removed 1 HTTPS/SVCB RR" {
		t.Errorf("decision %+v", d)
	}
	qa := query("secret.lab.test.", dns.TypeA)
	if _, changed := rewritten(t, a, "tcp", pack(t, reply(qa, []dns.RR{rr(t, "secret.lab.test. 60 IN A 127.0.0.1")}))); changed {
		t.Error("A answer rewritten by drop-https-rr")
	}
}

func TestPoison(t *testing.T) {
	qa := query("secret.lab.test.", dns.TypeA)
	twoA := reply(qa, []dns.RR{rr(t, "secret.lab.test. 60 IN A 127.0.0.1"), rr(t, "secret.lab.test. 60 IN A 127.0.0.3")})
	a := mustParse(t, "poison secret.lab.test 192.0.2.1")
	m, changed := rewritten(t, a, "udp", pack(t, twoA))
	if !changed || len(m.Answer) != 1 || m.Answer[0].(*dns.A).A.String() != "192.0.2.1" || m.Answer[0].Header().Ttl != 60 {
		t.Errorf("A answer after poison: %v", m.Answer)
	}
	if d := lastDecision(t, a); !strings.Contains(d.Detail, "A secret.lab.test 127.0.0.1 → 192.0.2.1") {
		t.Errorf("detail %q", d.Detail)
	}
	// The other family is removed; another name is left alone.
	qaaaa := query("secret.lab.test.", dns.TypeAAAA)
	m, _ = rewritten(t, a, "tcp", pack(t, reply(qaaaa, []dns.RR{rr(t, "secret.lab.test. 60 IN AAAA ::1")})))
	if len(m.Answer) != 0 || m.Rcode != dns.RcodeSuccess {
		t.Errorf("AAAA answer after poison v4: %v", m)
	}
	other := pack(t, reply(query("public.lab.test.", dns.TypeA), []dns.RR{rr(t, "public.lab.test. 60 IN A 127.0.0.1")}))
	if _, changed := rewritten(t, a, "udp", other); changed {
		t.Error("poison rewrote another name")
	}
	// IPv6, in the additional section of an HTTPS answer.
	a6 := mustParse(t, "poison *.lab.test 2001:db8::5")
	https := reply(query(svcName, dns.TypeHTTPS), []dns.RR{httpsRR(echList(t))},
		rr(t, "public.lab.test. 60 IN A 127.0.0.1"), rr(t, "public.lab.test. 60 IN AAAA ::1"))
	m, _ = rewritten(t, a6, "udp", pack(t, https))
	if len(m.Extra) != 2 || m.Extra[0].(*dns.AAAA).AAAA.String() != "2001:db8::5" || len(m.Answer) != 1 {
		t.Errorf("HTTPS answer after poison v6: %v", m)
	}
}

// TestPoisonInjects: a query for the name whose answer has no record of
// the family gets one, as an injecting censor answers.
func TestPoisonInjects(t *testing.T) {
	qa := query("secret.lab.test.", dns.TypeA)
	nx := reply(qa, nil)
	nx.Rcode = dns.RcodeNameError
	nx.Ns = []dns.RR{rr(t, "lab.test. 60 IN SOA ns.lab.test. hostmaster.lab.test. 1 3600 600 86400 60")}
	a := mustParse(t, "poison SECRET.lab.test. 192.0.2.1")
	m, _ := rewritten0(t, a, pack(t, nx))
	if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 || m.Answer[0].(*dns.A).A.String() != "192.0.2.1" || len(m.Ns) != 0 {
		t.Errorf("NXDOMAIN after poison: %v", m)
	}
	if d := lastDecision(t, a); d.Detail != "injected A secret.lab.test 192.0.2.1 (was NXDOMAIN)" {
		t.Errorf("detail %q", d.Detail)
	}
	cname := reply(qa, []dns.RR{rr(t, "secret.lab.test. 60 IN CNAME public.lab.test."), rr(t, "public.lab.test. 60 IN A 127.0.0.1")})
	if _, changed := rewritten(t, a, "udp", pack(t, cname)); changed {
		t.Error("poison injected beside a CNAME")
	}
}

// rewritten0 is rewritten for an answer whose rcode the rewrite may change.
func rewritten0(t *testing.T, a *Adversary, b []byte) (*dns.Msg, bool) {
	t.Helper()
	out, v := a.Datagram(flow(capture.RoleDo53, "udp"), false, b)
	m := new(dns.Msg)
	if err := m.Unpack(out); err != nil || v != capture.Pass {
		t.Fatalf("rewritten answer: %v, %v", err, v)
	}
	if m.Id != 0x1234 || !m.Response || len(m.Question) != 1 || m.Question[0].Name != "secret.lab.test." {
		t.Errorf("rewrite changed id or question: %v", m)
	}
	return m, &out[0] != &b[0]
}

// TestDNSColumn: every DNS policy of a column rewrites the answer, each
// logged; the answer is packed once.
func TestDNSColumn(t *testing.T) {
	https := reply(query(svcName, dns.TypeHTTPS), []dns.RR{httpsRR(echList(t))}, rr(t, "public.lab.test. 60 IN A 127.0.0.1"))
	a := mustParse(t, "block-ech+strip-ech+poison public.lab.test 192.0.2.1+drop-https-rr")
	m, _ := rewritten(t, a, "udp", pack(t, https))
	if len(m.Answer) != 0 || m.Extra[0].(*dns.A).A.String() != "192.0.2.1" {
		t.Errorf("answer %v", m)
	}
	var got []string
	for _, d := range a.Decisions() {
		got = append(got, d.Policy)
	}
	want := []string{"strip-ech", "poison public.lab.test 192.0.2.1", "drop-https-rr"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decisions by %q, want %q", got, want)
	}
}

// TestDNSQueries: queries are not rewritten; their names are sightings.
// Bytes that are not DNS pass untouched and unlogged.
func TestDNSQueries(t *testing.T) {
	a := mustParse(t, "strip-ech+poison secret.lab.test 192.0.2.1")
	f := flow(capture.RoleDo53, "udp")
	b := pack(t, query("Secret.Lab.Test.", dns.TypeA))
	if out, v := a.Datagram(f, true, b); v != capture.Pass || !bytes.Equal(out, b) {
		t.Errorf("query: %v, %x", v, out)
	}
	if s := a.Seen(); len(s) != 1 || s[0] != (Sighting{f, SawDNSQuery, "secret.lab.test"}) {
		t.Errorf("Seen() = %+v", s)
	}
	if d := lastDecision(t, a); d.Action != "pass" || d.QName != "secret.lab.test" || d.QType != "A" {
		t.Errorf("decision %+v", d)
	}
	junk := []byte("\x12\x34\x81\x80 not a DNS message")
	if out, v := a.Datagram(f, false, junk); v != capture.Pass || !bytes.Equal(out, junk) || len(a.Decisions()) != 1 {
		t.Errorf("junk: %v %q, %d decisions", v, out, len(a.Decisions()))
	}
}

// TestLabResolverAnswer runs the policies on the answers of the lab's own
// resolver (publishing a real key set) over Do53 on loopback.
func TestLabResolverAnswer(t *testing.T) {
	addr := startResolver(t)
	ask := func(name string, qtype uint16) []byte {
		c, err := net.Dial("udp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(pack(t, query(name, qtype))); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4096)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		return buf[:n]
	}
	ans := ask(svcName, dns.TypeHTTPS)
	m, changed := rewritten(t, mustParse(t, "strip-ech"), "udp", ans)
	if !changed || len(m.Answer) != 1 {
		t.Fatalf("strip-ech on the resolver's answer: %v", m)
	}
	if _, has := echParam(m.Answer[0].(*dns.HTTPS)); has {
		t.Error("ech left in the resolver's HTTPS record")
	}
	if m, changed = rewritten(t, mustParse(t, "drop-https-rr"), "udp", ans); !changed || len(m.Answer) != 0 {
		t.Errorf("drop-https-rr on the resolver's answer: %v", m)
	}
	m, changed = rewritten(t, mustParse(t, "poison secret.lab.test 192.0.2.1"), "udp", ask("secret.lab.test.", dns.TypeA))
	if !changed || len(m.Answer) != 1 || m.Answer[0].(*dns.A).A.String() != "192.0.2.1" {
		t.Errorf("poison on the resolver's answer: %v", m)
	}
}
