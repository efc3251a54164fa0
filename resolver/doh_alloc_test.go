package resolver

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// TestQueryValueMatchesParseQuery checks the in-place query scanner
// against url.ParseQuery, which it replaces on the DoH hot path: same
// value, same presence, an error exactly when ParseQuery has one.
func TestQueryValueMatchesParseQuery(t *testing.T) {
	raws := []string{
		"", "dns=AAAB", "dns=", "dns", "a=1&dns=xyz&dns=second", "&&dns=abc&", "dnsx=1&xdns=2",
		"name=example.com&type=A", "name=example.com&dns=abc", "dns=a%3D%3D", "dns=a+b", "dns=%zz&name=x",
		"dns=abc;name=x", "name=%41&dns=QQ", "=x&dns=y", "dns=abc=def",
	}
	for _, raw := range raws {
		for _, key := range []string{"dns", "name", "type"} {
			v, err := url.ParseQuery(raw)
			vals, want := v[key]
			wantVal := ""
			if want {
				wantVal = vals[0]
			}
			got, ok, gotErr := queryValue(raw, key)
			if got != wantVal || ok != want || (gotErr != nil) != (err != nil) {
				t.Errorf("queryValue(%q, %q) = %q, %v, %v; ParseQuery: %q, %v, %v", raw, key, got, ok, gotErr, wantVal, want, err)
			}
		}
	}
}

// TestRemovePaddingKeepsOptions checks that removing padding keeps the
// other options in order, and does not allocate when there is none.
func TestRemovePaddingKeepsOptions(t *testing.T) {
	m := new(dns.Msg).SetQuestion("a.lab.test.", dns.TypeA)
	m.SetEdns0(1232, false)
	opt := m.IsEdns0()
	cookie := &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"}
	subnet := &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: []byte{192, 0, 2, 0}}
	opt.Option = []dns.EDNS0{cookie, &dns.EDNS0_PADDING{Padding: make([]byte, 7)}, subnet, &dns.EDNS0_PADDING{}}
	removePadding(m)
	if len(opt.Option) != 2 || opt.Option[0] != cookie || opt.Option[1] != subnet {
		t.Fatalf("options after removePadding: %v", opt.Option)
	}
	if n := testing.AllocsPerRun(100, func() { removePadding(m) }); n != 0 {
		t.Errorf("removePadding without padding: %v allocations, want 0", n)
	}
}

// TestMetricsCountsAfterCaching checks that the counters Wrap caches per
// transport, qtype and rcode count every query under the right labels,
// a query without a question under qtype NONE and one of type 0 under
// its own name (None), and that a repeated query allocates nothing in the middleware.
func TestMetricsCountsAfterCaching(t *testing.T) {
	m := newMetrics()
	resp := new(dns.Msg)
	h := m.Wrap(HandlerFunc(func(_ context.Context, req *dns.Msg, _ Meta) *dns.Msg {
		resp.Rcode = dns.RcodeSuccess
		if len(req.Question) == 0 || req.Question[0].Qtype == 0 {
			resp.Rcode = dns.RcodeFormatError
		}
		return resp
	}))
	a := new(dns.Msg).SetQuestion("a.lab.test.", dns.TypeA)
	zero := new(dns.Msg).SetQuestion("a.lab.test.", 0)
	none := new(dns.Msg)
	ctx := context.Background()
	for range 3 {
		h.Answer(ctx, a, Meta{Transport: TransportDoH})
	}
	h.Answer(ctx, a, Meta{Transport: TransportUDP})
	h.Answer(ctx, none, Meta{Transport: TransportDoH})
	h.Answer(ctx, zero, Meta{Transport: TransportDoH})
	counts := map[string]float64{}
	histograms := 0
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, mm := range mf.GetMetric() {
			var labels []string
			for _, l := range mm.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			switch mf.GetName() {
			case "echlab_resolver_queries_total":
				counts[strings.Join(labels, ",")] = mm.GetCounter().GetValue()
			case "echlab_resolver_query_duration_seconds":
				histograms++
			}
		}
	}
	want := map[string]float64{
		"qtype=A,rcode=NOERROR,transport=doh":                   3,
		"qtype=A,rcode=NOERROR,transport=udp":                   1,
		"qtype=NONE,rcode=FORMERR,transport=doh":                1,
		"qtype=" + typeName(0) + ",rcode=FORMERR,transport=doh": 1,
	}
	if len(counts) != len(want) {
		t.Errorf("queries_total children %v, want %v", counts, want)
	}
	for k, v := range want {
		if counts[k] != v {
			t.Errorf("queries_total{%s} = %v, want %v", k, counts[k], v)
		}
	}
	if histograms != 2 {
		t.Errorf("%d latency histograms, want 2 (doh, udp)", histograms)
	}
	if n := testing.AllocsPerRun(100, func() { h.Answer(ctx, a, Meta{Transport: TransportDoH}) }); n != 0 {
		t.Errorf("metrics middleware: %v allocations per query, want 0", n)
	}
}

// TestDoHHandlerAllocs bounds the allocations the DoH layer adds to a GET
// query (base64, unpacking the query, the client address, the response
// headers), around a Handler that allocates nothing. Before the hot path
// was trimmed (url.ParseQuery twice, Header.Set, a fresh pack buffer,
// removePadding's copy) it took 15; now 9.
func TestDoHHandlerAllocs(t *testing.T) {
	resp := new(dns.Msg)
	resp.Response = true
	resp.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "a.lab.test.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: []byte{127, 0, 0, 1}}}
	h := newDoHHandler(HandlerFunc(func(_ context.Context, req *dns.Msg, _ Meta) *dns.Msg {
		resp.Question = req.Question
		return resp
	}), DoHHandlerOptions{})
	q := new(dns.Msg).SetQuestion("a.lab.test.", dns.TypeA)
	q.Id = 0
	wire, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse("https://127.0.0.1/dns-query?dns=" + base64.RawURLEncoding.EncodeToString(wire))
	r := &http.Request{Method: "GET", URL: u, Header: http.Header{}, ProtoMajor: 2, RemoteAddr: "127.0.0.1:5353"}
	w := &benchResponseWriter{h: http.Header{}}
	serve := func() {
		w.reset()
		h.ServeHTTP(w, r)
	}
	serve()
	var m dns.Msg
	if err := m.Unpack(w.body.Bytes()); err != nil || w.status != http.StatusOK || len(m.Answer) != 1 {
		t.Fatalf("status %d answer %v err %v", w.status, &m, err)
	}
	if ct, cc := w.h.Get("Content-Type"), w.h.Get("Cache-Control"); ct != mediaDNSMessage || cc != "max-age=60" {
		t.Fatalf("Content-Type %q Cache-Control %q", ct, cc)
	}
	n := testing.AllocsPerRun(200, serve)
	t.Logf("%v allocations per DoH GET", n)
	if n > 9 {
		t.Errorf("%v allocations per DoH GET in the DoH layer, want at most 9", n)
	}
	// The JSON switch still sees a name parameter next to dns.
	for raw, want := range map[string]bool{"name=a.lab.test": true, "name=a.lab.test&dns=AAAB": false, "dns=AAAB": false, "name=%61": true} {
		r := &http.Request{Method: "GET", URL: &url.URL{Path: DoHPath, RawQuery: raw}, Header: http.Header{}}
		if got := wantsJSON(r); got != want {
			t.Errorf("wantsJSON(%q) = %v, want %v", raw, got, want)
		}
	}
	if strings.Contains(w.h.Get("Content-Length"), "-") {
		t.Fatal("bad Content-Length")
	}
}
