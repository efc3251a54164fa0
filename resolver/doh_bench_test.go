package resolver

// Benchmarks of the DoH request path without the network: the handler
// the DoH server runs (decoding, the authority wrapped in metrics and the
// query log as `echlab resolver` builds it, padding, response writing),
// called with a recorder in place of net/http's ResponseWriter. They
// report allocations per request; BenchmarkDoHLoad (doh_dnsperf_test.go)
// measures the whole path over a real HTTP/2 connection.
//
//	go test -run '^$' -bench BenchmarkDoHHandler -benchmem ./resolver/

import (
	"bytes"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"testing"

	"github.com/miekg/dns"
)

// benchResponseWriter is a reusable http.ResponseWriter that keeps the
// status and the body of the last response.
type benchResponseWriter struct {
	h      http.Header
	status int
	body   bytes.Buffer
}

func (w *benchResponseWriter) Header() http.Header { return w.h }
func (w *benchResponseWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *benchResponseWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(b)
}

func (w *benchResponseWriter) reset() {
	clear(w.h)
	w.status = 0
	w.body.Reset()
}

// benchDoHHandler is the DoH handler over the test zone's authority with
// metrics and a query log (to io.Discard) in front, as `echlab resolver
// --log FILE` builds it.
func benchDoHHandler(b *testing.B) http.Handler {
	b.Helper()
	h := newMetrics().Wrap(testAuthority(b))
	h = withQueryLog(h, io.Discard, nil)
	return newDoHHandler(h, DoHHandlerOptions{})
}

func BenchmarkDoHHandler(b *testing.B) {
	h := benchDoHHandler(b)
	for _, tc := range []struct {
		name   string
		padded bool
	}{{"plain", false}, {"padded", true}} {
		q := new(dns.Msg).SetQuestion("svc.lab.test.", dns.TypeHTTPS)
		q.Id = 0 // RFC 8484 section 4.1: GET queries use ID 0 for caching
		if tc.padded {
			if err := padQuery(q); err != nil {
				b.Fatal(err)
			}
		}
		wire, err := q.Pack()
		if err != nil {
			b.Fatal(err)
		}
		b.Run("GET-"+tc.name, func(b *testing.B) {
			u, _ := url.Parse("https://127.0.0.1/dns-query?dns=" + base64.RawURLEncoding.EncodeToString(wire))
			r := &http.Request{Method: "GET", URL: u, Header: http.Header{}, ProtoMajor: 2, RemoteAddr: "127.0.0.1:5353"}
			benchServe(b, h, r, nil)
		})
		b.Run("POST-"+tc.name, func(b *testing.B) {
			u, _ := url.Parse("https://127.0.0.1/dns-query")
			r := &http.Request{Method: "POST", URL: u, Header: http.Header{"Content-Type": {mediaDNSMessage}}, ProtoMajor: 2, RemoteAddr: "127.0.0.1:5353"}
			benchServe(b, h, r, wire)
		})
	}
}

func benchServe(b *testing.B, h http.Handler, r *http.Request, body []byte) {
	w := &benchResponseWriter{h: http.Header{}}
	rd := bytes.NewReader(body)
	b.ReportAllocs()
	for b.Loop() {
		w.reset()
		if body != nil {
			rd.Reset(body)
			r.Body = io.NopCloser(rd)
		}
		h.ServeHTTP(w, r)
		if w.status != http.StatusOK {
			b.Fatalf("status %d: %s", w.status, w.body.Bytes())
		}
	}
	var m dns.Msg
	if err := m.Unpack(w.body.Bytes()); err != nil || len(m.Answer) == 0 {
		b.Fatalf("answer %v, %v", &m, err)
	}
}
