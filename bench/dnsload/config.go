package main

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// ErrConfig is wrapped by every bad flag, mix file or configuration.
var ErrConfig = errors.New("dnsload: bad configuration")

// Transports the generator speaks.
const (
	DoQ   = "doq"    // RFC 9250: a stream per query, ALPN doq
	DoH3  = "doh-h3" // RFC 8484 over HTTP/3: GET ?dns=, ALPN h3
	DoH2  = "doh-h2" // RFC 8484 over HTTP/2: GET ?dns=, ALPN h2
	DoT   = "dot"    // RFC 7858: pipelined on each connection, one ID per in-flight slot
	alpnQ = "doq"
)

// Config is one load run. The zero value of every field but Transport,
// Addr and Mix has a default (populate).
type Config struct {
	Transport string
	Addr      string // host:port
	Mix       []Query
	TLS       *tls.Config   // nil: verify against the system roots
	Conns     int           // connections; 0 means 4
	InFlight  int           // concurrent queries per connection; 0 means 32
	Duration  time.Duration // 0 means 3 s
	Timeout   time.Duration // per query; 0 means 5 s
	Path      string        // DoH path; empty means /dns-query
}

func (c *Config) populate() error {
	switch c.Transport {
	case DoQ, DoH3, DoH2, DoT:
	default:
		return fmt.Errorf("%w: transport %q (doq, doh-h3, doh-h2 or dot)", ErrConfig, c.Transport)
	}
	if c.Addr == "" {
		return fmt.Errorf("%w: no server address", ErrConfig)
	}
	if len(c.Mix) == 0 {
		return fmt.Errorf("%w: empty query mix", ErrConfig)
	}
	if c.Conns < 0 || c.InFlight < 0 || c.Duration < 0 || c.Timeout < 0 {
		return fmt.Errorf("%w: negative conns, inflight, duration or timeout", ErrConfig)
	}
	if c.InFlight > 65535 {
		return fmt.Errorf("%w: inflight %d: DoT tells queries apart by a 16-bit ID", ErrConfig, c.InFlight)
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Conns, 4)
	def(&c.InFlight, 32)
	if c.Duration == 0 {
		c.Duration = 3 * time.Second
	}
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Second
	}
	if c.Path == "" {
		c.Path = "/dns-query"
	}
	if c.TLS == nil {
		c.TLS = &tls.Config{}
	}
	return nil
}

// Query is one query of the mix and the answer it must get: the response
// code and the number of answer records (as the resolver's slow path, or
// a reference server, gives them).
type Query struct {
	Name    string
	Type    uint16
	Rcode   int
	Answers int
	// Expected is false until Rcode and Answers are known.
	Expected bool
}

func (q Query) String() string { return q.Name + " " + dns.TypeToString[q.Type] }

// wire is the query as sent: ID id, RD set, no EDNS (as peers.sh's other
// generators send it).
func (q Query) wire(id uint16) ([]byte, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(q.Name), q.Type)
	m.Id = id
	b, err := m.Pack()
	if err != nil {
		return nil, fmt.Errorf("%w: query %s: %w", ErrConfig, q, err)
	}
	return b, nil
}

// ParseMix reads a query mix: one query a line, "NAME TYPE" (dnsperf's
// format) or "NAME TYPE RCODE ANSWERS" with the expected answer, e.g.
// "nope.lab.test A NXDOMAIN 0". Blank lines and # comments are skipped.
func ParseMix(r io.Reader) ([]Query, error) {
	var mix []Query
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		q, err := parseQuery(strings.Fields(line))
		if err != nil {
			return nil, fmt.Errorf("%w: mix line %d: %w", ErrConfig, n, err)
		}
		mix = append(mix, q)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: mix: %w", ErrConfig, err)
	}
	return mix, nil
}

func parseQuery(f []string) (Query, error) {
	if len(f) != 2 && len(f) != 4 {
		return Query{}, errors.New("want NAME TYPE [RCODE ANSWERS]")
	}
	t, ok := dns.StringToType[strings.ToUpper(f[1])]
	if !ok {
		return Query{}, fmt.Errorf("unknown type %q", f[1])
	}
	q := Query{Name: dns.Fqdn(f[0]), Type: t}
	if _, ok := dns.IsDomainName(q.Name); !ok {
		return Query{}, fmt.Errorf("bad name %q", f[0])
	}
	if len(f) == 2 {
		return q, nil
	}
	rc, ok := dns.StringToRcode[strings.ToUpper(f[2])]
	if !ok {
		return Query{}, fmt.Errorf("unknown rcode %q", f[2])
	}
	an, err := strconv.Atoi(f[3])
	if err != nil || an < 0 || an > 65535 {
		return Query{}, fmt.Errorf("bad answer count %q", f[3])
	}
	q.Rcode, q.Answers, q.Expected = rc, an, true
	return q, nil
}
