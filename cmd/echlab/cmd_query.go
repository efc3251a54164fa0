package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/resolver"
	"github.com/miekg/dns"
)

func init() {
	register(command{name: "query", summary: "ask a DNS server over udp/tcp/tls/https/h3/quic, dig-style",
		run: func(args []string) error { return queryCmd(args, os.Stdout) }})
}

const querySummary = `Send one query to @URL (udp://, tcp://, tls://, https://HOST/dns-query,
h3://HOST/dns-query, quic://; a bare HOST:PORT means udp) and print the answer
in dig's style, decoding any ech= value. TYPE defaults to A.`

func queryCmd(args []string, stdout io.Writer) error {
	fs := newFlags("query", "@URL NAME [TYPE]", querySummary)
	pkiDir := fs.String("pki", "pki", pkiFlagUsage)
	caFile := fs.String("ca", "", caFlagUsage)
	insecure := fs.Bool("insecure", false, "do not verify the server certificate")
	sni := fs.String("sni", "", "TLS server `name` (default: the URL host)")
	asJSON := fs.Bool("json", false, "print the answer as application/dns-json")
	timeout := fs.Duration("timeout", 5*time.Second, "time allowed for the exchange")
	get := fs.Bool("get", false, "DoH: send GET ?dns= instead of POST")
	http1 := fs.Bool("http1", false, "https: offer only HTTP/1.1")
	bootstrap := fs.String("bootstrap", "", "IP `address` to dial when the URL host is a name")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	server, name, qtype, err := queryArgs(pos)
	if err != nil {
		fmt.Fprintln(os.Stderr, "echlab query:", err)
		fs.Usage()
		return errUsage
	}
	opts := resolver.ClientOptions{InsecureSkipVerify: *insecure, ServerName: *sni, Timeout: *timeout,
		UseGET: *get, HTTP1Only: *http1, Bootstrap: *bootstrap}
	if opts.RootCAs, _, err = trustPool(*pkiDir, *caFile); err != nil {
		return err
	}
	c, err := resolver.NewClient(server, opts)
	if err != nil {
		return err
	}
	defer c.Close()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.SetEdns0(1232, false)
	resp, tm, err := resolver.ExchangeTimed(context.Background(), c, m)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(resolver.NewJSONMessage(resp))
	}
	printAnswer(stdout, resp, tm, c.Address())
	return nil
}

// parseInterspersed parses flags found before, between and after the
// positional arguments, which it returns.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parse(fs, args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// queryArgs sorts @URL NAME [TYPE] (in any order, like dig).
func queryArgs(pos []string) (server, name string, qtype uint16, err error) {
	qtype = dns.TypeA
	var rest []string
	for _, a := range pos {
		if strings.HasPrefix(a, "@") {
			server = a[1:]
		} else if t, ok := dns.StringToType[strings.ToUpper(a)]; ok && len(rest) > 0 {
			qtype = t
		} else {
			rest = append(rest, a)
		}
	}
	if server == "" || len(rest) != 1 {
		return "", "", 0, fmt.Errorf("want @URL NAME [TYPE], got %q", pos)
	}
	return server, rest[0], qtype, nil
}

// printAnswer prints resp as dig does, then the decoded ech= values.
func printAnswer(w io.Writer, resp *dns.Msg, tm resolver.Timing, server string) {
	for _, line := range strings.Split(resp.String(), "\n") {
		if hex, ok := strings.CutPrefix(line, "; PADDING: "); ok {
			line = fmt.Sprintf("; PADDING: %d octets", len(hex)/2) // not the zeros themselves
		}
		fmt.Fprintln(w, line)
	}
	for _, rr := range resp.Answer {
		printECH(w, rr)
	}
	fmt.Fprintf(w, ";; Query time: %d msec (connect %v, handshake %v, rtt %v, reused %v)\n",
		tm.Total.Milliseconds(), tm.Connect.Round(time.Microsecond), tm.Handshake.Round(time.Microsecond),
		tm.RTT.Round(time.Microsecond), tm.Reused)
	fmt.Fprintf(w, ";; SERVER: %s (%s)\n", server, tm.Protocol)
	fmt.Fprintf(w, ";; WHEN: %s\n", time.Now().Format(time.RFC1123Z))
	fmt.Fprintf(w, ";; MSG SIZE  rcvd: %d\n", tm.ReplySize)
}

// printECH decodes the ech= SvcParam of an HTTPS or SVCB record.
func printECH(w io.Writer, rr dns.RR) {
	raw, ok := resolver.ECHParam(rr)
	if !ok {
		return
	}
	fmt.Fprintf(w, ";; ECH CONFIGS of %s:\n", rr.Header().Name)
	list, err := ech.ParseConfigListLenient(raw)
	if list == nil {
		fmt.Fprintf(w, ";;   undecodable: %v\n", err)
		return
	}
	for _, c := range list.Configs {
		fmt.Fprintf(w, ";;   config_id %d, KEM %#04x %s, public_name %s\n", c.ConfigID, c.KEM, ech.KEMName(c.KEM), c.PublicName)
		for _, s := range c.CipherSuites {
			fmt.Fprintf(w, ";;     suite KDF %#04x %s, AEAD %#04x %s\n", s.KDF, ech.KDFName(s.KDF), s.AEAD, ech.AEADName(s.AEAD))
		}
	}
	for _, s := range list.Skipped {
		fmt.Fprintf(w, ";;   skipped %s\n", s.String())
	}
}
