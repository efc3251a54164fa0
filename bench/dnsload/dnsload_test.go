package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/resolver"
	"github.com/miekg/dns"
)

// peersMix is bench/peers.sh's query mix.
var peersMix = []string{"secret.lab.test HTTPS", "secret.lab.test A", "public.lab.test AAAA", "www.lab.test A",
	"svc.lab.test HTTPS", "nope.lab.test A", "public.lab.test MX", "backend.lab.test AAAA"}

// startResolver starts an in-process resolver on 127.0.0.1:0 with the
// test zone, an ECH key set published on secret.lab.test, the four
// transports dnsload speaks, and a lab CA; it returns it, a TLS config
// trusting its CA, and the mix with the answers the resolver's handler
// (the slow path, no network) gives.
func startResolver(t *testing.T) (*resolver.Running, *tls.Config, []Query) {
	t.Helper()
	k, err := ech.GenerateKey(ech.KeyOptions{ConfigID: 7})
	if err != nil {
		t.Fatal(err)
	}
	ks := &ech.KeySet{}
	ks.Add(k, true)
	keys := t.TempDir()
	if err := ech.SaveKeySet(keys, ks); err != nil {
		t.Fatal(err)
	}
	free := "127.0.0.1:0"
	r, err := resolver.Start(resolver.Config{
		Zones:   []resolver.ZoneFile{{File: filepath.Join("..", "..", "resolver", "testdata", "lab.test.zone")}},
		KeySets: map[string]string{"main": keys},
		Publish: []resolver.PublishRule{{Name: "secret.lab.test.", KeySet: "main", ALPN: []string{"h2", "h3"}}},
		Listen:  resolver.Listen{TCP: free, DoQ: free, DoH3: free, DoH: free, DoT: free},
		TLS:     resolver.TLSFiles{CADir: t.TempDir()},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	pem, err := os.ReadFile(r.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		t.Fatal("no CA certificate")
	}
	mix, err := ParseMix(strings.NewReader(strings.Join(peersMix, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	for i, q := range mix {
		m := new(dns.Msg)
		m.SetQuestion(q.Name, q.Type)
		a := r.Handler.Answer(context.Background(), m, resolver.Meta{Transport: resolver.TransportTCP, UDPSize: 65535})
		mix[i].Rcode, mix[i].Answers, mix[i].Expected = a.Rcode, len(a.Answer), true
	}
	if mix[0].Answers != 1 || mix[5].Rcode != dns.RcodeNameError {
		t.Fatalf("slow path: %v", mix)
	}
	return r, &tls.Config{RootCAs: roots}, mix
}

func load(t *testing.T, r *resolver.Running, tc *tls.Config, transport string, mix []Query) *Result {
	t.Helper()
	listener := map[string]string{DoQ: "doq", DoH3: "doh3", DoH2: "doh", DoT: "dot"}[transport]
	res, err := Run(context.Background(), Config{Transport: transport, Addr: r.Addr(listener).String(),
		Mix: mix, TLS: tc, Conns: 2, InFlight: 4, Duration: 250 * time.Millisecond})
	if err != nil {
		t.Fatalf("%s: %v", transport, err)
	}
	return res
}

// TestLoadAnswersChecked: against an in-process resolver, every transport
// gets answers and no errors with the slow path's expected answers; with
// one query's expected answer count wrong, exactly that query's answers
// are counted as errors (so a wrong or lost answer cannot pass).
func TestLoadAnswersChecked(t *testing.T) {
	r, tc, mix := startResolver(t)
	for _, transport := range []string{DoQ, DoH3, DoH2, DoT} {
		t.Run(transport, func(t *testing.T) {
			res := load(t, r, tc, transport, mix)
			if res.Answered == 0 || res.Errors != 0 {
				t.Fatalf("answered %d, errors %d: %v", res.Answered, res.Errors, res.TopReasons(3))
			}
			if res.Latency.n != res.Answered || res.Latency.quantile(.5) <= 0 {
				t.Fatalf("latency: %d samples, p50 %s", res.Latency.n, res.Latency.quantile(.5))
			}

			wrong := append([]Query(nil), mix...)
			wrong[3].Answers++ // www.lab.test A: a CNAME chain and the address
			res = load(t, r, tc, transport, wrong)
			if res.Answered == 0 || res.Errors == 0 {
				t.Fatalf("wrong expectation: answered %d, errors %d", res.Answered, res.Errors)
			}
			reasons := res.TopReasons(10)
			if len(reasons) != 1 || !strings.Contains(reasons[0], "www.lab.test. A: 3 answers, want 4") {
				t.Fatalf("wrong expectation: errors %v", reasons)
			}
		})
	}
}

// TestCommand: the command as peers.sh runs it (a dnsperf-style mix, the
// expected answers from the server's Do53 over TCP, its CA file) prints
// the lines peers.sh reads; --expect-from fills in the handler's answers.
func TestCommand(t *testing.T) {
	r, _, want := startResolver(t)
	mixFile := filepath.Join(t.TempDir(), "queries")
	if err := os.WriteFile(mixFile, []byte(strings.Join(peersMix, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ParseMix(strings.NewReader(strings.Join(peersMix, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	if err := expectFrom(context.Background(), r.Addr("tcp").String(), got); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("expect-from %v, the handler gives %v", got, want)
	}
	var out strings.Builder
	err = run([]string{"--transport", "doq", "--addr", r.Addr("doq").String(), "--queries", mixFile,
		"--expect-from", r.Addr("tcp").String(), "--ca", r.CAFile, "--conns", "1", "--inflight", "2",
		"--duration", "250ms"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	var rate float64
	var errs int
	for _, line := range strings.Split(out.String(), "\n") {
		fmt.Sscanf(line, "answered/s: %g", &rate)
		fmt.Sscanf(line, "errors: %d", &errs)
	}
	if rate <= 0 || errs != 0 || !strings.Contains(out.String(), "latency: p50=") {
		t.Fatalf("output:\n%s", out.String())
	}
	if err := run([]string{"--transport", "doq", "--addr", "127.0.0.1:1", "--queries", mixFile}, &out); !errors.Is(err, ErrConfig) {
		t.Fatalf("a mix without expectations and no --expect-from: %v", err)
	}
}

// TestCheck: the header and question checks on answer bytes.
func TestCheck(t *testing.T) {
	items, err := newItems([]Query{{Name: "a.lab.test.", Type: dns.TypeA, Rcode: dns.RcodeSuccess, Answers: 1, Expected: true}})
	if err != nil {
		t.Fatal(err)
	}
	it := &items[0]
	answer := func(edit func(m *dns.Msg)) []byte {
		m := new(dns.Msg)
		m.SetQuestion("a.lab.test.", dns.TypeA)
		m.Id = 0
		m.Response = true
		a, _ := dns.NewRR("a.lab.test. 60 IN A 127.0.0.1")
		m.Answer = []dns.RR{a}
		edit(m)
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if err := it.check(answer(func(*dns.Msg) {}), 0); err != nil {
		t.Fatalf("good answer: %v", err)
	}
	for name, c := range map[string]struct {
		resp []byte
		id   uint16
		want string
	}{
		"short":    {resp: []byte{0, 0, 0x80, 0}, want: "response of 4 bytes"},
		"id":       {resp: answer(func(m *dns.Msg) { m.Id = 9 }), want: "ID 9, want 0"},
		"slot id":  {resp: answer(func(*dns.Msg) {}), id: 3, want: "ID 0, want 3"},
		"qr":       {resp: answer(func(m *dns.Msg) { m.Response = false }), want: "QR not set"},
		"rcode":    {resp: answer(func(m *dns.Msg) { m.Rcode = dns.RcodeServerFailure }), want: "rcode SERVFAIL, want NOERROR"},
		"answers":  {resp: answer(func(m *dns.Msg) { m.Answer = nil }), want: "0 answers, want 1"},
		"question": {resp: answer(func(m *dns.Msg) { m.Question[0].Name = "b.lab.test." }), want: "question section differs"},
		"qtype":    {resp: answer(func(m *dns.Msg) { m.Question[0].Qtype = dns.TypeAAAA }), want: "question section differs"},
	} {
		err := it.check(c.resp, c.id)
		if !errors.Is(err, ErrAnswer) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}

// TestParseMix: both line forms, and clear errors for bad lines.
func TestParseMix(t *testing.T) {
	mix, err := ParseMix(strings.NewReader("# mix\nsecret.lab.test HTTPS\n\nnope.lab.test a NXDOMAIN 0\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Query{{Name: "secret.lab.test.", Type: dns.TypeHTTPS},
		{Name: "nope.lab.test.", Type: dns.TypeA, Rcode: dns.RcodeNameError, Expected: true}}
	if len(mix) != 2 || mix[0] != want[0] || mix[1] != want[1] {
		t.Fatalf("%+v, want %+v", mix, want)
	}
	for _, bad := range []string{"x", "a.test BOGUS", "a.test A NOERROR", "a.test A WHAT 1", "a.test A NOERROR -1", "a..test A"} {
		if _, err := ParseMix(strings.NewReader(bad)); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if _, err := Run(context.Background(), Config{Transport: DoQ, Addr: "127.0.0.1:1", Mix: mix}); !errors.Is(err, ErrConfig) {
		t.Errorf("a mix line without expectation: %v", err)
	}
	if _, err := Run(context.Background(), Config{Transport: "udp", Addr: "127.0.0.1:1", Mix: mix}); !errors.Is(err, ErrConfig) {
		t.Errorf("unknown transport: %v", err)
	}
}

// TestHist: quantiles land in the bucket of the true value (within 1/16).
func TestHist(t *testing.T) {
	var h hist
	for i := 1; i <= 1000; i++ {
		h.add(time.Duration(i) * time.Microsecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{.5, 500 * time.Microsecond}, {.99, 990 * time.Microsecond}, {.001, time.Microsecond}} {
		got := h.quantile(c.q)
		if got > c.want || float64(got) < float64(c.want)*15/16 {
			t.Errorf("q%.3f = %s, want about %s", c.q, got, c.want)
		}
	}
	if h.max != time.Millisecond || h.n != 1000 {
		t.Errorf("max %s n %d", h.max, h.n)
	}
	for d := time.Duration(1); d < time.Hour; d = d*3 + 1 {
		if b := bucket(d); lower(b) > d || (b+1 < len(h.counts) && lower(b+1) <= d) {
			t.Fatalf("%s in bucket %d [%s, %s)", d, b, lower(b), lower(b+1))
		}
	}
}

// TestPeersScript: bench/peers.sh parses (bash -n) and, when shellcheck
// is installed, passes it.
func TestPeersScript(t *testing.T) {
	script := filepath.Join("..", "peers.sh")
	if out, err := exec.Command("bash", "-n", script).CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, out)
	}
	sc, err := exec.LookPath("shellcheck")
	if err != nil {
		t.Log("shellcheck not installed: bash -n only")
		return
	}
	if out, err := exec.Command(sc, script).CombinedOutput(); err != nil {
		t.Fatalf("shellcheck: %v\n%s", err, out)
	}
}
