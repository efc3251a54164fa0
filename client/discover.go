package client

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Exchanger sends one DNS query and returns the answer. The resolver
// package's stub Client (any transport) satisfies it.
type Exchanger interface {
	Exchange(ctx context.Context, m *dns.Msg) (*dns.Msg, error)
}

// MaxAliasChain bounds how many HTTPS AliasMode records Discover follows.
const MaxAliasChain = 8

// Discovery is what the HTTPS record and address lookups said about an
// origin.
type Discovery struct {
	// Owner is the first HTTPS owner name queried: the host, or
	// _PORT._https.HOST for ports other than 443 (RFC 9460 §2.3).
	Owner string `json:"owner"`
	// Aliases are the AliasMode targets followed, in order.
	Aliases []string `json:"aliases,omitempty"`
	// Found is true when a ServiceMode HTTPS record was found.
	Found bool `json:"found"`
	// Priority is the SvcPriority of the record used.
	Priority uint16 `json:"priority,omitempty"`
	// Target is the effective TargetName: where to connect.
	Target string `json:"target"`
	// Port is the record's port SvcParam, or the URL port.
	Port int `json:"port"`
	// ALPN is the record's alpn SvcParam.
	ALPN []string `json:"alpn,omitempty"`
	// ConfigList is the record's ech SvcParam (an ECHConfigList), or nil.
	ConfigList []byte `json:"-"`
	// Addrs are the target's addresses from A/AAAA lookups, or the hints.
	Addrs []netip.Addr `json:"addrs,omitempty"`
	// FromHints is true when Addrs came from ipv4hint/ipv6hint.
	FromHints bool `json:"from_hints,omitempty"`
	// Queries counts the DNS queries sent, and Elapsed their total time.
	Queries int           `json:"queries"`
	Elapsed time.Duration `json:"elapsed_ns"`
}

// HTTPSOwner returns the owner name of the HTTPS record for host:port:
// the host itself for 443, and _PORT._https.HOST otherwise.
func HTTPSOwner(host string, port int) string {
	host = dns.Fqdn(host)
	if port == 0 || port == 443 {
		return host
	}
	return fmt.Sprintf("_%d._https.%s", port, host)
}

// Discover looks up the HTTPS record of host:port through ex, follows
// AliasMode records (at most MaxAliasChain), picks the compatible
// ServiceMode record of lowest priority (see compatible), and looks up the addresses of its target through ex
// (falling back to the address hints). A name without an HTTPS record is
// not an error: Found is false and Target is host. The address lookup is
// skipped when lookupAddrs is false.
func Discover(ctx context.Context, ex Exchanger, host string, port int, lookupAddrs bool) (*Discovery, error) {
	start := time.Now()
	d := &Discovery{Owner: HTTPSOwner(host, port), Port: port, Target: dns.Fqdn(host)}
	defer func() { d.Elapsed = time.Since(start) }()
	if err := d.findService(ctx, ex, host); err != nil {
		return d, err
	}
	if !lookupAddrs {
		return d, nil
	}
	return d, d.lookupAddrs(ctx, ex)
}

func (d *Discovery) findService(ctx context.Context, ex Exchanger, host string) error {
	owner := d.Owner
	for {
		rrs, rcode, err := d.query(ctx, ex, owner, dns.TypeHTTPS)
		if err != nil {
			return err
		}
		if rcode == dns.RcodeNameError {
			return nil
		}
		svc, alias := pickHTTPS(rrs)
		if svc != nil {
			d.useService(svc, owner, host)
			return nil
		}
		if alias == nil || alias.Target == "." {
			return nil // no record, or "service not available" alias
		}
		if len(d.Aliases) >= MaxAliasChain {
			return &Error{Class: ClassDNS, Op: "dns", Err: fmt.Errorf("%w: more than %d aliases after %s", ErrAliasLoop, MaxAliasChain, d.Owner)}
		}
		owner = dns.Fqdn(alias.Target)
		d.Aliases = append(d.Aliases, owner)
	}
}

// pickHTTPS returns the first AliasMode record if the set has one (RFC
// 9460 §2.4.2: "If an RRSet contains a record in AliasMode, the recipient
// MUST ignore any ServiceMode records in the set"), or else the
// compatible ServiceMode record of lowest priority (first among equals).
func pickHTTPS(rrs []dns.RR) (svc, alias *dns.HTTPS) {
	svc, alias = pickService(rrs)
	if alias != nil {
		return nil, alias
	}
	return svc, nil
}

// pickService returns the compatible ServiceMode record of lowest priority
// (first among equals) and the first AliasMode record.
func pickService(rrs []dns.RR) (svc, alias *dns.HTTPS) {
	for _, rr := range rrs {
		h, ok := rr.(*dns.HTTPS)
		if !ok {
			continue
		}
		switch {
		case h.Priority == 0:
			if alias == nil {
				alias = h
			}
		case !compatible(h):
			continue
		case svc == nil || h.Priority < svc.Priority:
			svc = h
		}
	}
	return svc, alias
}

// usedKeys are the SvcParamKeys useService implements.
var usedKeys = []dns.SVCBKey{dns.SVCB_ALPN, dns.SVCB_PORT, dns.SVCB_IPV4HINT, dns.SVCB_ECHCONFIG, dns.SVCB_IPV6HINT}

// compatible says whether a ServiceMode record lists in "mandatory" only
// keys the client implements. RFC 9460 §8: "A ServiceMode RR is considered
// "compatible" by a client if the client recognizes all the mandatory
// keys …. Incompatible RRs are ignored."
func compatible(h *dns.HTTPS) bool {
	for _, kv := range h.Value {
		m, ok := kv.(*dns.SVCBMandatory)
		if !ok {
			continue
		}
		for _, k := range m.Code {
			if !slices.Contains(usedKeys, k) {
				return false
			}
		}
	}
	return true
}

// useService takes the target, port, alpn, ech and hints of a ServiceMode
// record. A target of "." means the owner name (RFC 9460 §2.5.2); for the
// port-prefixed owner we asked for ourselves, that is the host (nobody
// publishes addresses at _PORT._https.HOST).
func (d *Discovery) useService(h *dns.HTTPS, owner, host string) {
	d.Found, d.Priority = true, h.Priority
	d.Target = dns.Fqdn(h.Target)
	if h.Target == "." {
		d.Target = owner
		if owner == d.Owner {
			d.Target = dns.Fqdn(host)
		}
	}
	for _, kv := range h.Value {
		switch v := kv.(type) {
		case *dns.SVCBPort:
			d.Port = int(v.Port)
		case *dns.SVCBAlpn:
			d.ALPN = append([]string(nil), v.Alpn...)
		case *dns.SVCBECHConfig:
			d.ConfigList = append([]byte(nil), v.ECH...)
		case *dns.SVCBIPv4Hint:
			d.Addrs = appendIPs(d.Addrs, v.Hint)
			d.FromHints = true
		case *dns.SVCBIPv6Hint:
			d.Addrs = appendIPs(d.Addrs, v.Hint)
			d.FromHints = true
		}
	}
}

// lookupAddrs asks for A then AAAA of the target; hints stay only when both
// lookups gave nothing.
func (d *Discovery) lookupAddrs(ctx context.Context, ex Exchanger) error {
	if a, err := netip.ParseAddr(strings.TrimSuffix(d.Target, ".")); err == nil {
		d.Addrs, d.FromHints = []netip.Addr{a}, false
		return nil
	}
	var found []netip.Addr
	nx := 0
	for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
		rrs, rcode, err := d.query(ctx, ex, d.Target, qt)
		if err != nil {
			return err
		}
		if rcode == dns.RcodeNameError {
			nx++
		}
		for _, rr := range rrs {
			switch r := rr.(type) {
			case *dns.A:
				found = appendIPs(found, []net.IP{r.A})
			case *dns.AAAA:
				found = appendIPs(found, []net.IP{r.AAAA})
			}
		}
	}
	if len(found) > 0 {
		d.Addrs, d.FromHints = found, false
		return nil
	}
	if len(d.Addrs) > 0 {
		return nil // the hints are all we have
	}
	if nx == 2 {
		return &Error{Class: ClassDNS, Op: "dns", Err: fmt.Errorf("%w: %s", ErrNXDomain, d.Target)}
	}
	return &Error{Class: ClassDNS, Op: "dns", Err: fmt.Errorf("%w: no A/AAAA for %s", ErrNoAddress, d.Target)}
}

// query sends one question and returns the answer section and rcode.
// Rcodes other than NOERROR and NXDOMAIN are errors.
func (d *Discovery) query(ctx context.Context, ex Exchanger, name string, qtype uint16) ([]dns.RR, int, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.SetEdns0(1232, false)
	d.Queries++
	resp, err := ex.Exchange(ctx, m)
	if err != nil {
		return nil, 0, classify("dns", ClassDNS, fmt.Errorf("client: %s %s: %w", dns.TypeToString[qtype], name, err))
	}
	switch resp.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError:
		return resp.Answer, resp.Rcode, nil
	}
	return nil, resp.Rcode, &Error{Class: ClassDNS, Op: "dns",
		Err: fmt.Errorf("%w: %s for %s %s", ErrDNSRcode, dns.RcodeToString[resp.Rcode], dns.TypeToString[qtype], name)}
}

// appendIPs converts net.IPs to netip.Addrs (unmapping IPv4) and appends
// the ones not already present.
func appendIPs(dst []netip.Addr, ips []net.IP) []netip.Addr {
	for _, ip := range ips {
		a, ok := netip.AddrFromSlice(ip)
		if !ok {
			continue
		}
		a = a.Unmap()
		dup := false
		for _, b := range dst {
			dup = dup || a == b
		}
		if !dup {
			dst = append(dst, a)
		}
	}
	return dst
}
