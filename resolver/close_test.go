package resolver

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/echlab/echlab/internal/testutil"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// closeLag is how long slowHandler takes to return once its query's
// context ends: a Close that does not wait for handlers returns first.
const closeLag = 200 * time.Millisecond

// serverFrames name the goroutines of a resolver server (and the
// net/http connection goroutines it owns); none may outlive Close.
var serverFrames = []string{"resolver.(*", "resolver.serveDoH", "resolver.startMetrics", "net/http.(*conn).serve"}

// slowHandler answers once the query's context ends, closeLag later, as
// a forwarder whose upstream exchange is cut off by Close would.
type slowHandler struct {
	entered  chan struct{}
	returned atomic.Int32
}

func newSlowHandler() *slowHandler { return &slowHandler{entered: make(chan struct{}, 16)} }

func (h *slowHandler) Answer(ctx context.Context, req *dns.Msg, _ Meta) *dns.Msg {
	h.entered <- struct{}{}
	select {
	case <-ctx.Done():
	case <-time.After(time.Minute): // a context Close never ends
	}
	time.Sleep(closeLag)
	h.returned.Add(1)
	resp := new(dns.Msg)
	return resp.SetRcode(req, dns.RcodeServerFailure)
}

// waitEntered waits until n queries are inside the handler.
func (h *slowHandler) waitEntered(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-h.entered:
		case <-time.After(5 * time.Second):
			t.Fatal("the query never reached the handler")
		}
	}
}

// closeAndCheck calls close, which must return within 5 s, after every
// handler call of h (n of them) returned and with no goroutine of the
// server left that was not there in before.
func closeAndCheck(t *testing.T, before map[string]string, h *slowHandler, n int32, closeFn func() error) {
	t.Helper()
	done := make(chan struct{})
	go func() { closeFn(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return within 5 s")
	}
	if h.returned.Load() != n {
		t.Errorf("Close returned with %d of %d handler calls still running", n-h.returned.Load(), n)
	}
	// A goroutine that has signalled its end (wg.Done) may still be
	// unwinding: give those a moment, not the goroutines that work on.
	left := testutil.NewGoroutines(before, serverFrames...)
	for deadline := time.Now().Add(time.Second); len(left) > 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		left = testutil.NewGoroutines(before, serverFrames...)
	}
	for _, g := range left {
		t.Errorf("goroutine left after Close:\n%s", g)
	}
}

func TestUDPCloseWaitsForHandlers(t *testing.T) {
	before := testutil.Goroutines()
	h := newSlowHandler()
	s, err := StartUDP(h, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("udp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(packed(t, query("public.lab.test.", dns.TypeA, 1)))
	h.waitEntered(t, 1)
	closeAndCheck(t, before, h, 1, s.Close)
}

func TestStreamCloseWaitsForConnections(t *testing.T) {
	l := newLab(t)
	for _, dot := range []bool{false, true} {
		t.Run("dot="+strconv.FormatBool(dot), func(t *testing.T) {
			before := testutil.Goroutines()
			h := newSlowHandler()
			start := func() (*StreamServer, error) { return StartTCP(h, "") }
			dial := func(addr string) (net.Conn, error) { return net.Dial("tcp", addr) }
			if dot {
				start = func() (*StreamServer, error) { return StartDoT(h, l.tlsOpts()) }
				dial = func(addr string) (net.Conn, error) {
					return tls.Dial("tcp", addr, &tls.Config{RootCAs: l.ca.Pool(), ServerName: "dns.lab.test"})
				}
			}
			s, err := start()
			if err != nil {
				t.Fatal(err)
			}
			busy, err := dial(s.Addr().String()) // a query in the handler
			if err != nil {
				t.Fatal(err)
			}
			defer busy.Close()
			busy.Write(frame(packed(t, query("public.lab.test.", dns.TypeA, 1))))
			half, err := dial(s.Addr().String()) // half a query
			if err != nil {
				t.Fatal(err)
			}
			defer half.Close()
			half.Write([]byte{0, 40, 0, 9})
			h.waitEntered(t, 1)
			closeAndCheck(t, before, h, 1, s.Close)
		})
	}
}

func TestDoHCloseWaitsForRequests(t *testing.T) {
	l := newLab(t)
	before := testutil.Goroutines()
	h := newSlowHandler()
	s, err := StartDoH(h, DoHOptions{TLSListenerOptions: l.tlsOpts()})
	if err != nil {
		t.Fatal(err)
	}
	body := string(packed(t, query("public.lab.test.", dns.TypeA, 0)))
	post := "POST " + DoHPath + " HTTP/1.1\r\nHost: dns.lab.test\r\nContent-Type: " + mediaDNSMessage +
		"\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n"
	busy := dialDoH(t, l, s.Addr().String()) // HTTP/1.1, in the handler
	io.WriteString(busy, post+body)
	half := dialDoH(t, l, s.Addr().String()) // HTTP/1.1, half the body sent
	io.WriteString(half, post+body[:5])
	// HTTP/2: net/http runs the handler on a goroutine of its own.
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: l.ca.Pool(), ServerName: "dns.lab.test"}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	h2 := make(chan *http.Response, 1)
	get, _ := http.NewRequest("GET", "https://"+s.Addr().String()+DoHPath+"?dns="+b64url([]byte(body)), nil)
	go func() {
		resp, _ := tr.RoundTrip(get)
		h2 <- resp
	}()
	h.waitEntered(t, 2)
	closeAndCheck(t, before, h, 2, s.Close)
	if resp := <-h2; resp != nil && resp.ProtoMajor != 2 {
		t.Errorf("the second request went over %s, want HTTP/2", resp.Proto)
	}
}

func TestDoH3CloseWaitsForRequests(t *testing.T) {
	l := newLab(t)
	before := testutil.Goroutines()
	h := newSlowHandler()
	s, err := StartDoH3(h, DoHOptions{TLSListenerOptions: l.tlsOpts()})
	if err != nil {
		t.Fatal(err)
	}
	tr := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: l.ca.Pool(), ServerName: "dns.lab.test"}}
	defer tr.Close()
	get, _ := http.NewRequest("GET", "https://"+s.Addr().String()+DoHPath+"?dns="+b64url(packed(t, query("public.lab.test.", dns.TypeA, 0))), nil)
	go func() {
		if resp, err := tr.RoundTrip(get); err == nil {
			resp.Body.Close()
		}
	}()
	h.waitEntered(t, 1)
	closeAndCheck(t, before, h, 1, s.Close)
}

func TestDoQCloseWaitsForStreams(t *testing.T) {
	l := newLab(t)
	before := testutil.Goroutines()
	h := newSlowHandler()
	s, err := StartDoQ(h, DoQOptions{TLSListenerOptions: l.tlsOpts()})
	if err != nil {
		t.Fatal(err)
	}
	conn := dialDoQ(t, l, s)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	busy, err := conn.OpenStreamSync(ctx) // a query in the handler
	if err != nil {
		t.Fatal(err)
	}
	busy.Write(framed(t, query("public.lab.test.", dns.TypeA, 0)))
	busy.Close()
	halves := make([]*quic.Stream, 8) // half a query each, no FIN
	for i := range halves {
		if halves[i], err = conn.OpenStreamSync(ctx); err != nil {
			t.Fatal(err)
		}
		halves[i].Write(framed(t, query("public.lab.test.", dns.TypeA, 0))[:7])
	}
	h.waitEntered(t, 1)
	waitGoroutines(t, before, "resolver.(*DoQServer).serveStream", len(halves)+1)
	closeAndCheck(t, before, h, 1, s.Close)
}

// waitGoroutines waits until n goroutines not in before have match in
// their stack.
func waitGoroutines(t *testing.T, before map[string]string, match string, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := len(testutil.NewGoroutines(before, match))
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d goroutines %s", got, n, match)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// slowCollector is a Prometheus collector that takes closeLag to
// collect, so that a /metrics request is still in its handler when Close
// comes.
type slowCollector struct{ h *slowHandler }

func (c slowCollector) Describe(chan<- *prometheus.Desc) {}

func (c slowCollector) Collect(chan<- prometheus.Metric) {
	c.h.entered <- struct{}{}
	time.Sleep(closeLag)
	c.h.returned.Add(1)
}

func TestMetricsCloseWaitsForConnections(t *testing.T) {
	before := testutil.Goroutines()
	m := newMetrics()
	h := newSlowHandler()
	m.Registry.MustRegister(slowCollector{h})
	s, err := startMetrics(m, "")
	if err != nil {
		t.Fatal(err)
	}
	busy, err := net.Dial("tcp", s.Addr().String()) // a request in the handler
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	io.WriteString(busy, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
	for range 10 { // connections with half a request each
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "GET /metrics HTTP/1.1\r\nHo")
	}
	h.waitEntered(t, 1)
	waitGoroutines(t, before, "net/http.(*conn).serve", 11)
	closeAndCheck(t, before, h, 1, s.Close)
}
