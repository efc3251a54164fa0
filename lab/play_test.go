package lab

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/echlab/echlab/client"
	"github.com/echlab/echlab/internal/pki"
	"github.com/echlab/echlab/server"
)

func TestPlayPlan(t *testing.T) {
	ca, err := pki.NewCA("play test")
	if err != nil {
		t.Fatal(err)
	}
	all := map[string]string{DNSDo53: "udp://x:53", DNSDoT: "tls://x:853", DNSDoH: "https://x/dns-query",
		DNSDoH3: "h3://x/dns-query", DNSDoQ: "quic://x:853"}
	_, cases, err := PlayConfig{DNS: all, RootCAs: ca.Pool()}.populate()
	if err != nil {
		t.Fatal(err)
	}
	var labels []string
	for _, c := range cases {
		labels = append(labels, c.Scenario+"/"+c.Transport)
	}
	want := "baseline/doh ech-shared/do53 ech-shared/dot ech-shared/doh ech-shared/doh3 ech-shared/doq ech-shared-h3/doh ech-split/doh grease/doh stale-retry/doh"
	if got := strings.Join(labels, " "); got != want {
		t.Errorf("default plan:\n got %s\nwant %s", got, want)
	}
	bad := []PlayConfig{
		{DNS: all},           // no CA
		{RootCAs: ca.Pool()}, // no resolver
		{DNS: map[string]string{"smoke": "udp://x:53"}, RootCAs: ca.Pool()},                                   // unknown transport
		{DNS: all, RootCAs: ca.Pool(), Scenarios: []string{"ech-pq"}},                                         // not a play scenario
		{DNS: map[string]string{DNSDo53: "udp://x:53"}, RootCAs: ca.Pool(), Scenarios: []string{"ech-split"}}, // needs doh
	}
	for i, c := range bad {
		if _, _, err := c.populate(); err == nil {
			t.Errorf("bad config %d: no error", i)
		}
	}
}

// TestPlayResolverDown plays the fault cases on loopback: the resolver URL
// is a port nobody listens on (a closed TCP port answers with a reset),
// the fallback address a real baseline server.
func TestPlayResolverDown(t *testing.T) {
	ca, err := pki.NewCA("play test")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.Start(server.Config{Addr: "127.0.0.1:0", Names: []string{SecretName}, CA: ca})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	out := t.TempDir()
	cfg := PlayConfig{OutDir: out, DNS: map[string]string{DNSDoH: "https://" + dead + "/dns-query"}, RootCAs: ca.Pool(),
		FallbackAddr: srv.Addr(), CaseTimeout: 10 * time.Second,
		Scenarios: []string{PlayResolverDown, PlayResolverDownFallback}}
	start := time.Now()
	res, err := Play(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Play: %v (%+v)", err, res)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("the fault cases took %v", d)
	}
	down, fb := res.Cases[0], res.Cases[1]
	if down.Result == nil || down.Result.ErrorClass != client.ClassDNS || down.Result.ECH == client.ECHFallback {
		t.Errorf("resolver-down: want a fail-closed DNS error, got %+v", down.Result)
	}
	if fb.Result == nil || fb.Result.ECH != client.ECHFallback || fb.Result.Status != 200 || fb.Result.OuterSNI != SecretName {
		t.Errorf("resolver-down-fallback: want a plaintext fallback fetch, got %+v", fb.Result)
	}
	for _, f := range []string{FileClient, FileScenarios, FileKeylog} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 && f != FileKeylog {
			t.Errorf("%s: %v", f, err)
		}
	}
	if st, _ := os.Stat(filepath.Join(out, FileKeylog)); st != nil && st.Mode().Perm() != 0o600 {
		t.Errorf("keylog mode %v, want 0600", st.Mode().Perm())
	}
}

func TestJudgeDown(t *testing.T) {
	dnsErr := &client.Error{Class: client.ClassDNS, Op: "dns", Err: errors.New("refused")}
	r := &client.Result{}
	cases := []struct {
		c    Case
		r    *client.Result
		err  error
		want Outcome
	}{
		{Case{Scenario: PlayResolverDown}, r, dnsErr, OutcomeOK},
		{Case{Scenario: PlayResolverDown}, r, nil, OutcomeFailed},
		{Case{Scenario: PlayResolverDown}, r, &client.Error{Class: client.ClassHandshake, Err: errors.New("x")}, OutcomeFailed},
		{Case{Scenario: PlayResolverDownFallback}, &client.Result{ECH: client.ECHFallback, Fallback: true}, nil, OutcomeOK},
		{Case{Scenario: PlayResolverDownFallback}, &client.Result{ECH: client.ECHAccepted}, nil, OutcomeFailed},
		{Case{Scenario: PlayResolverDownFallback}, r, dnsErr, OutcomeFailed},
	}
	for i, tc := range cases {
		if got, detail := judgeDown(tc.c, tc.r, tc.err); got != tc.want {
			t.Errorf("%d: %s, want %s (%s)", i, got, tc.want, detail)
		}
	}
}

func TestPlayWindows(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []CaseResult{{Start: t0, End: t0.Add(time.Second)}, {Start: t0.Add(2 * time.Second), End: t0.Add(3 * time.Second)}}
	w := windows(cases)
	if !w[0].End.Equal(cases[1].Start) || !w[1].End.Equal(cases[1].End.Add(playSettle)) {
		t.Errorf("windows: %v, %v", w[0].End, w[1].End)
	}
	if !cases[0].End.Equal(t0.Add(time.Second)) {
		t.Error("windows changed its input")
	}
}
