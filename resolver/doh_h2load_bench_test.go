//go:build unix

package resolver

import (
	"encoding/base64"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// BenchmarkDoHH2load serves DoH in-process (the test zone's authority
// behind metrics, as `echlab resolver` runs it) and loads it with h2load
// (nghttp2-client) in a child process: b.N GET requests over 4
// connections of 32 streams (HTTP/2) or 32 pipelined requests
// (HTTP/1.1), with our HTTP/2 and HTTP/1.1 servers and with net/http's.
// It reports requests/s and the CPU the test
// process spent per request, the figure -cpuprofile breaks down.
//
//	taskset -c 0 go test -run '^$' -bench BenchmarkDoHH2load -benchtime 100000x ./resolver/
func BenchmarkDoHH2load(b *testing.B) {
	h2load, err := exec.LookPath("h2load")
	if err != nil {
		b.Skip("no h2load (apt-get install nghttp2-client)")
	}
	l := newLab(b)
	h := newMetrics().Wrap(testAuthority(b))
	q := new(dns.Msg).SetQuestion("svc.lab.test.", dns.TypeHTTPS)
	q.Id = 0
	wire, err := q.Pack()
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		netHTTP bool
		h1      bool
	}{{"h2", false, false}, {"h2-nethttp", true, false}, {"h1", false, true}, {"h1-nethttp", true, true}} {
		b.Run(tc.name, func(b *testing.B) {
			s, err := StartDoH(h, DoHOptions{TLSListenerOptions: l.tlsOpts(), NetHTTP2: tc.netHTTP && !tc.h1, NetHTTP1: tc.netHTTP && tc.h1})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			args := []string{"-n", strconv.Itoa(max(b.N, 100)), "-c", "4", "-m", "32"}
			if tc.h1 {
				args = append(args, "--h1")
			}
			args = append(args, s.URL()+"?dns="+base64.RawURLEncoding.EncodeToString(wire))
			cmd := exec.Command(h2load, args...)
			if cpu := os.Getenv("ECHLAB_BENCH_LOAD_CPU"); cpu != "" { // e.g. 1, with the test on core 0
				cmd = exec.Command("taskset", append([]string{"-c", cpu, h2load}, args...)...)
			}
			var before, after syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &before)
			b.ResetTimer()
			out, err := cmd.CombinedOutput()
			b.StopTimer()
			syscall.Getrusage(syscall.RUSAGE_SELF, &after)
			if err != nil {
				b.Fatalf("h2load: %v\n%s", err, out)
			}
			m := regexp.MustCompile(`(\d+) succeeded`).FindSubmatch(out)
			if m == nil {
				b.Fatalf("h2load output:\n%s", out)
			}
			ok, _ := strconv.Atoi(string(m[1]))
			if ok != max(b.N, 100) {
				b.Fatalf("%d of %d requests succeeded:\n%s", ok, max(b.N, 100), out)
			}
			cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
			b.ReportMetric(float64(ok)/b.Elapsed().Seconds(), "queries/s")
			b.ReportMetric(float64(cpu.Microseconds())/float64(ok), "server-µs/q")
		})
	}
}
