package resolver

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/miekg/dns"
)

// defaultUDPSize is the EDNS(0) UDP payload size the resolver advertises
// (the DNS Flag Day 2020 value).
const defaultUDPSize = 1232

// maxChain bounds how many CNAMEs are followed inside our zones.
const maxChain = 12

// ErrDuplicateZone is returned when two zones have the same origin.
var ErrDuplicateZone = errors.New("resolver: duplicate zone")

// Upstream forwards a query for a name outside our zones. The stub client
// (NewClient) satisfies it.
type Upstream interface {
	Exchange(ctx context.Context, req *dns.Msg) (*dns.Msg, error)
}

// Authority is the Handler that answers from zones. It is safe for
// concurrent use; SetZones swaps the zones atomically (the publisher uses
// it to publish new ECH configs), and with them the cache of precompiled
// UDP answers (fastpath.go), so that no answer outlives the zones it came
// from.
type Authority struct {
	state atomic.Pointer[authState]

	// Forward, when set, receives queries (with RD=1) for names outside
	// every zone. When nil those get REFUSED: no open resolver.
	Forward Upstream
	// UDPSize is the EDNS(0) payload size put in responses; 0 means 1232.
	UDPSize uint16
}

// newAuthority makes an Authority over zones, which must have distinct
// origins.
func newAuthority(zones []*Zone) (*Authority, error) {
	a := &Authority{}
	return a, a.SetZones(zones)
}

// SetZones replaces the zones served.
func (a *Authority) SetZones(zones []*Zone) error {
	seen := map[string]string{}
	for _, z := range zones {
		if f, dup := seen[z.Origin]; dup {
			return fmt.Errorf("%w: %s is in %s and %s", ErrDuplicateZone, z.Origin, f, z.File)
		}
		seen[z.Origin] = z.File
	}
	a.state.Store(newAuthState(append([]*Zone(nil), zones...)))
	return nil
}

// Zones returns the zones currently served.
func (a *Authority) Zones() []*Zone {
	if st := a.state.Load(); st != nil {
		return st.zones
	}
	return nil
}

// authState is what SetZones swaps in one step: the zones and the cache of
// answers compiled from them.
type authState struct {
	zones []*Zone
	fast  *fastCache
}

func newAuthState(zones []*Zone) *authState {
	return &authState{zones: zones, fast: newFastCache()}
}

// load returns the current state (an empty one before SetZones).
func (a *Authority) load() *authState {
	if st := a.state.Load(); st != nil {
		return st
	}
	return &authState{}
}

// Answer implements Handler.
func (a *Authority) Answer(ctx context.Context, req *dns.Msg, meta Meta) *dns.Msg {
	resp, _ := a.answer(ctx, a.load().zones, req)
	return resp
}

// answer answers req from zones. local reports that the answer is a pure
// function of zones and the query (not forwarded), so it may be cached
// with them.
func (a *Authority) answer(ctx context.Context, zones []*Zone, req *dns.Msg) (resp *dns.Msg, local bool) {
	resp = &dns.Msg{Compress: true}
	if req == nil {
		resp.Response, resp.Rcode = true, dns.RcodeFormatError
		return resp, true
	}
	resp.Id, resp.Response, resp.Opcode = req.Id, true, req.Opcode
	resp.RecursionDesired = req.RecursionDesired
	if rc := checkQuery(req); rc != dns.RcodeSuccess {
		if len(req.Question) == 1 {
			resp.Question = []dns.Question{req.Question[0]}
		}
		resp.Rcode = rc
		a.addOPT(req, resp)
		return resp, true
	}
	q := req.Question[0]
	resp.Question = []dns.Question{q}
	qname := dns.CanonicalName(q.Name)
	z := zoneFor(zones, qname)
	switch {
	case z == nil && a.Forward != nil && req.RecursionDesired:
		return a.forward(ctx, req, resp), false
	case z == nil:
		// REFUSED, but not cached: Forward may be set later, and names
		// outside the zones are not worth a cache slot.
		resp.Rcode = dns.RcodeRefused
		a.addOPT(req, resp)
		return resp, false
	case q.Qtype == dns.TypeAXFR, q.Qtype == dns.TypeIXFR:
		resp.Rcode = dns.RcodeRefused
	default:
		resp.Authoritative = true
		resolve(resp, zones, z, qname, q.Qtype)
	}
	a.addOPT(req, resp)
	return resp, true
}

// checkQuery returns the rcode for a query we will not look up, or
// RcodeSuccess.
func checkQuery(req *dns.Msg) int {
	switch {
	case req.Response:
		return dns.RcodeFormatError
	case req.Opcode != dns.OpcodeQuery:
		return dns.RcodeNotImplemented
	case len(req.Question) != 1, len(req.Answer) != 0, len(req.Ns) != 0:
		return dns.RcodeFormatError
	}
	opts := 0
	for _, rr := range req.Extra {
		if opt, ok := rr.(*dns.OPT); ok {
			opts++
			if opt.Hdr.Name != "." {
				return dns.RcodeFormatError
			}
		}
	}
	if opts > 1 {
		return dns.RcodeFormatError
	}
	if opt := req.IsEdns0(); opt != nil && opt.Version() != 0 {
		return dns.RcodeBadVers
	}
	if c := req.Question[0].Qclass; c != dns.ClassINET && c != dns.ClassANY {
		return dns.RcodeRefused
	}
	return dns.RcodeSuccess
}

// addOPT echoes EDNS(0) with our payload size when the query had it.
func (a *Authority) addOPT(req, resp *dns.Msg) {
	opt := req.IsEdns0()
	if opt == nil {
		if resp.Rcode > 0xf { // an extended rcode needs an OPT to carry it
			resp.Rcode = dns.RcodeFormatError
		}
		return
	}
	size := a.UDPSize
	if size == 0 {
		size = defaultUDPSize
	}
	resp.SetEdns0(size, opt.Do())
}

func (a *Authority) forward(ctx context.Context, req, resp *dns.Msg) *dns.Msg {
	up := req.Copy()
	out, err := a.Forward.Exchange(ctx, up)
	if err != nil || out == nil {
		resp.Rcode = dns.RcodeServerFailure
		a.addOPT(req, resp)
		return resp
	}
	out.Id, out.Compress = req.Id, true
	out.RecursionAvailable = true
	out.Authoritative = false
	return out
}

// negativeSOA returns the SOA for the authority section of a negative
// answer, with TTL min(SOA TTL, SOA minimum) (RFC 2308 §3).
func negativeSOA(z *Zone) dns.RR {
	soa := dns.Copy(z.SOA).(*dns.SOA)
	soa.Hdr.Ttl = min(soa.Hdr.Ttl, soa.Minttl)
	return soa
}

// resolve fills resp with the answer for qname/qtype, following CNAMEs
// through our zones.
func resolve(resp *dns.Msg, zones []*Zone, z *Zone, qname string, qtype uint16) {
	seen := map[string]bool{}
	name := qname
	for range maxChain {
		if seen[name] {
			return // a CNAME loop: give what we have
		}
		seen[name] = true
		rrs, kind := lookup(z, name, qtype)
		switch kind {
		case found:
			resp.Answer = append(resp.Answer, rrs...)
			addAdditional(resp, zones)
			return
		case nodata:
			resp.Ns = append(resp.Ns, negativeSOA(z))
			return
		case nxdomain:
			resp.Rcode = dns.RcodeNameError
			resp.Ns = append(resp.Ns, negativeSOA(z))
			return
		}
		resp.Answer = append(resp.Answer, rrs...)
		name = dns.CanonicalName(rrs[0].(*dns.CNAME).Target)
		if z = zoneFor(zones, name); z == nil {
			return // the chain leaves our zones; the client follows it
		}
	}
}

// lookupKind says what lookup found.
type lookupKind int

const (
	found    lookupKind = iota // rrs answer the question
	cname                      // rrs is the CNAME to follow
	nodata                     // the name exists without that type
	nxdomain                   // the name does not exist
)

// lookup finds qtype at name in z, synthesising from a wildcard (RFC 4592)
// when name does not exist.
func lookup(z *Zone, name string, qtype uint16) ([]dns.RR, lookupKind) {
	node, owner := z.nodes[name], name
	if !z.exists(name) {
		wild := "*." + closestEncloser(z, name)
		if node = z.nodes[wild]; node == nil {
			return nil, nxdomain
		}
	}
	pick := func(rrs []dns.RR) []dns.RR { return withOwner(rrs, owner) }
	if qtype == dns.TypeANY { // RFC 8482: one RRset is enough
		for _, t := range sortedTypes(node) {
			return pick(node[t]), found
		}
		return nil, nodata
	}
	if rrs := node[qtype]; len(rrs) > 0 {
		return pick(rrs), found
	}
	if rrs := node[dns.TypeCNAME]; len(rrs) > 0 {
		return pick(rrs), cname
	}
	return nil, nodata
}

// closestEncloser returns the longest existing ancestor of name in z.
func closestEncloser(z *Zone, name string) string {
	for n := name; n != z.Origin; {
		i, end := dns.NextLabel(n, 0)
		if end {
			break
		}
		if n = n[i:]; z.exists(n) {
			return n
		}
	}
	return z.Origin
}

// withOwner copies rrs with the owner name set to owner (for wildcard
// synthesis, and so that callers never share the zone's records).
func withOwner(rrs []dns.RR, owner string) []dns.RR {
	out := make([]dns.RR, len(rrs))
	for i, rr := range rrs {
		out[i] = dns.Copy(rr)
		out[i].Header().Name = owner
	}
	return out
}

func sortedTypes(node map[uint16][]dns.RR) []uint16 {
	ts := make([]uint16, 0, len(node))
	for t := range node {
		ts = append(ts, t)
	}
	slices.Sort(ts)
	return ts
}

// addAdditional puts the in-zone A and AAAA records of the names that the
// answer's SVCB, HTTPS, MX, SRV and NS records point at into the additional
// section, and the target RRset of an SVCB/HTTPS AliasMode record.
func addAdditional(resp *dns.Msg, zones []*Zone) {
	done := map[string]bool{}
	add := func(target string, types ...uint16) {
		target = dns.CanonicalName(target)
		z := zoneFor(zones, target)
		key := fmt.Sprint(target, types)
		if z == nil || done[key] {
			return
		}
		done[key] = true
		for _, t := range types {
			resp.Extra = append(resp.Extra, withOwner(z.rrset(target, t), target)...)
		}
	}
	for _, rr := range resp.Answer {
		switch rr := rr.(type) {
		case *dns.HTTPS:
			addSVCBTarget(&rr.SVCB, dns.TypeHTTPS, add)
		case *dns.SVCB:
			addSVCBTarget(rr, dns.TypeSVCB, add)
		case *dns.MX:
			add(rr.Mx, dns.TypeA, dns.TypeAAAA)
		case *dns.SRV:
			add(rr.Target, dns.TypeA, dns.TypeAAAA)
		case *dns.NS:
			add(rr.Ns, dns.TypeA, dns.TypeAAAA)
		}
	}
}

func addSVCBTarget(rr *dns.SVCB, t uint16, add func(string, ...uint16)) {
	target := rr.Target
	if target == "." {
		if rr.Priority == 0 {
			return // AliasMode to "." means the service does not exist
		}
		target = rr.Hdr.Name
	}
	if rr.Priority == 0 {
		add(target, t)
	}
	add(target, dns.TypeA, dns.TypeAAAA)
}
