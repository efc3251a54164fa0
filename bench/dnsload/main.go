// Command dnsload is a DNS load generator for the transports Debian's
// (dnsperf, h2load) do not speak: DNS over QUIC (RFC 9250) and DoH over
// HTTP/3; and, to compare the QUIC transports on equal footing, DoT and
// DoH over HTTP/2 with the same loop. bench/peers.sh runs it for its doq
// and doh-h3 rows (and dnsload-dot, dnsload-doh-h2).
//
//	dnsload --transport doq|doh-h3|doh-h2|dot --addr HOST:PORT --queries FILE
//	        [--expect-from HOST:PORT] [--conns 4] [--inflight 32] [--duration 3s]
//	        [--ca FILE | --insecure] [--server-name NAME] [--timeout 5s]
//
// It opens --conns connections (handshakes before the clock starts) and
// keeps --inflight queries in flight on each: for DoQ a stream per query,
// ID 0, FIN after the query; for DoH a GET ?dns= with ID 0; for DoT
// queries pipelined on the connection, one ID per in-flight slot. The
// queries cycle through the mix file (dnsperf's "NAME TYPE" lines, or
// "NAME TYPE RCODE ANSWERS" with the expected answer; --expect-from asks
// a Do53 server over TCP for the lines without one). Every response is
// checked: its ID, QR, question, rcode and number of answer records; a
// lost, late or wrong answer is an error. It prints answered queries per
// second, errors, latency percentiles and its own CPU per answer (about
// one second per second: the generator's core was the limit). Pin it with
// taskset as peers.sh does (LOAD_CPU).
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("dnsload", flag.ContinueOnError)
	var cfg Config
	fs.StringVar(&cfg.Transport, "transport", DoQ, "doq, doh-h3, doh-h2 or dot")
	fs.StringVar(&cfg.Addr, "addr", "", "server address HOST:PORT")
	queries := fs.String("queries", "", `query mix file: "NAME TYPE [RCODE ANSWERS]" a line`)
	expect := fs.String("expect-from", "", "Do53 server (TCP) whose answers are expected for mix lines without RCODE ANSWERS")
	fs.IntVar(&cfg.Conns, "conns", 4, "connections")
	fs.IntVar(&cfg.InFlight, "inflight", 32, "concurrent queries per connection")
	fs.DurationVar(&cfg.Duration, "duration", 3*time.Second, "how long to run")
	fs.DurationVar(&cfg.Timeout, "timeout", 5*time.Second, "per query (and per handshake)")
	fs.StringVar(&cfg.Path, "path", "/dns-query", "DoH path")
	caFile := fs.String("ca", "", "PEM certificate(s) to trust (a self-signed server certificate works)")
	insecure := fs.Bool("insecure", false, "do not verify the server's certificate")
	name := fs.String("server-name", "", "TLS server name; empty is the address's host")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	tc, err := tlsConfig(*caFile, *insecure, *name)
	if err != nil {
		return err
	}
	cfg.TLS = tc
	if cfg.Mix, err = readMix(*queries); err != nil {
		return err
	}
	ctx := context.Background()
	if *expect != "" {
		if err := expectFrom(ctx, *expect, cfg.Mix); err != nil {
			return err
		}
	}
	r, err := Run(ctx, cfg)
	if err != nil {
		return err
	}
	report(out, &cfg, r)
	return nil
}

func readMix(file string) ([]Query, error) {
	if file == "" {
		return nil, fmt.Errorf("%w: --queries is required", ErrConfig)
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	defer f.Close()
	return ParseMix(f)
}

func tlsConfig(caFile string, insecure bool, name string) (*tls.Config, error) {
	tc := &tls.Config{ServerName: name, InsecureSkipVerify: insecure} //nolint:gosec // a flag for lab servers
	if caFile == "" {
		return tc, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	tc.RootCAs = x509.NewCertPool()
	if !tc.RootCAs.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%w: no certificate in %s", ErrConfig, caFile)
	}
	return tc, nil
}

// report prints the run as "key: value" lines (peers.sh reads answered/s
// and errors).
func report(w io.Writer, cfg *Config, r *Result) {
	l := &r.Latency
	fmt.Fprintf(w, "transport: %s\naddr: %s\nconns: %d\ninflight: %d\nduration: %s\n",
		cfg.Transport, cfg.Addr, cfg.Conns, cfg.InFlight, cfg.Duration)
	fmt.Fprintf(w, "answered: %d\nanswered/s: %.0f\nerrors: %d\n", r.Answered, r.Rate(), r.Errors)
	if r.Answered > 0 {
		// ≈ 1 s of CPU per second on a pinned core: the generator was the limit
		fmt.Fprintf(w, "client-cpu: %.2f s/s, %.1f us/q\n", r.ClientCPU.Seconds()/r.Duration.Seconds(),
			float64(r.ClientCPU.Microseconds())/float64(r.Answered))
	}
	us := func(d time.Duration) time.Duration { return d.Round(time.Microsecond) }
	fmt.Fprintf(w, "latency: p50=%s p90=%s p99=%s p99.9=%s max=%s\n",
		us(l.quantile(.5)), us(l.quantile(.9)), us(l.quantile(.99)), us(l.quantile(.999)), us(l.max))
	for _, e := range r.TopReasons(5) {
		fmt.Fprintf(w, "error: %s\n", strings.ReplaceAll(e, "\n", " "))
	}
}
