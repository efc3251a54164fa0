package resolver

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/miekg/dns"
)

// ErrZone is wrapped by every error about the contents of a zone file.
var ErrZone = errors.New("resolver: bad zone")

// Zone is one authoritative zone loaded from an RFC 1035 master file. A Zone
// is never changed after it is built: publishing ECH configs makes a new one
// (see Zone.with), so readers need no lock.
type Zone struct {
	Origin string   // fully qualified, lower case
	File   string   // where it was loaded from, for messages
	SOA    *dns.SOA // the apex SOA

	// nodes maps an owner name (lower case, fully qualified) to its RRsets
	// by type. Empty non-terminals are in names but not in nodes.
	nodes map[string]map[uint16][]dns.RR
	names map[string]bool // every existing name, empty non-terminals included
}

// LoadZoneFile reads a zone file. origin may be empty when the file sets
// $ORIGIN or starts with an SOA record with an absolute owner name.
func LoadZoneFile(file, origin string) (*Zone, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("resolver: zone: %w", err)
	}
	defer f.Close()
	return ParseZone(f, origin, file)
}

// ParseZone reads a zone in master-file format from r. file names the
// source in error messages (and is used to resolve $INCLUDE, which is not
// allowed). Errors name the file and line.
func ParseZone(r io.Reader, origin, file string) (*Zone, error) {
	if origin != "" {
		origin = dns.CanonicalName(origin)
	}
	zp := dns.NewZoneParser(r, origin, file)
	var rrs []dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrs = append(rrs, rr)
	}
	if err := zp.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrZone, err)
	}
	return buildZone(rrs, origin, file)
}

func buildZone(rrs []dns.RR, origin, file string) (*Zone, error) {
	z := &Zone{Origin: origin, File: file, nodes: map[string]map[uint16][]dns.RR{}, names: map[string]bool{}}
	for _, rr := range rrs {
		if soa, ok := rr.(*dns.SOA); ok && z.SOA == nil {
			z.SOA = soa
			if z.Origin == "" {
				z.Origin = dns.CanonicalName(soa.Hdr.Name)
			}
		}
	}
	if z.SOA == nil {
		return nil, fmt.Errorf("%w: %s: no SOA record", ErrZone, file)
	}
	if dns.CanonicalName(z.SOA.Hdr.Name) != z.Origin {
		return nil, fmt.Errorf("%w: %s: SOA owner %s is not the origin %s", ErrZone, file, z.SOA.Hdr.Name, z.Origin)
	}
	for _, rr := range rrs {
		if err := z.add(rr); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrZone, file, err)
		}
	}
	return z, nil
}

func (z *Zone) add(rr dns.RR) error {
	h := rr.Header()
	h.Name = dns.CanonicalName(h.Name)
	if !dns.IsSubDomain(z.Origin, h.Name) {
		return fmt.Errorf("record %s is outside the zone %s", h.Name, z.Origin)
	}
	if h.Class != dns.ClassINET {
		return fmt.Errorf("record %s has class %s, only IN is served", h.Name, dns.ClassToString[h.Class])
	}
	if h.Rrtype == dns.TypeSOA && h.Name != z.Origin {
		return fmt.Errorf("SOA record at %s, below the apex", h.Name)
	}
	node := z.nodes[h.Name]
	if node == nil {
		node = map[uint16][]dns.RR{}
		z.nodes[h.Name] = node
	}
	if h.Rrtype == dns.TypeSOA && len(node[dns.TypeSOA]) > 0 {
		return nil // keep the first SOA only
	}
	if _, hasCNAME := node[dns.TypeCNAME]; hasCNAME != (h.Rrtype == dns.TypeCNAME) && len(node) > 0 {
		return fmt.Errorf("CNAME at %s next to other data", h.Name)
	}
	if h.Rrtype == dns.TypeCNAME && len(node[dns.TypeCNAME]) > 0 {
		return fmt.Errorf("more than one CNAME at %s", h.Name)
	}
	node[h.Rrtype] = append(node[h.Rrtype], rr)
	for n := h.Name; ; {
		z.names[n] = true
		if n == z.Origin {
			break
		}
		i, _ := dns.NextLabel(n, 0)
		n = n[i:]
	}
	return nil
}

// rrset returns the records of one type at name (nil if none).
func (z *Zone) rrset(name string, t uint16) []dns.RR { return z.nodes[name][t] }

// exists says whether name exists in the zone, empty non-terminals included.
func (z *Zone) exists(name string) bool { return z.names[name] }

// Serial returns the SOA serial.
func (z *Zone) Serial() uint32 { return z.SOA.Serial }

// with returns a copy of z in which the RRset of type t at name is replaced
// by rrs and the SOA serial is set to serial. The copy shares the untouched
// RRsets with z.
func (z *Zone) with(name string, t uint16, rrs []dns.RR, serial uint32) *Zone {
	c := &Zone{Origin: z.Origin, File: z.File, nodes: make(map[string]map[uint16][]dns.RR, len(z.nodes)+1), names: z.names}
	for n, node := range z.nodes {
		c.nodes[n] = node
	}
	node := make(map[uint16][]dns.RR, len(c.nodes[name])+1)
	for k, v := range c.nodes[name] {
		node[k] = v
	}
	node[t] = rrs
	c.nodes[name] = node
	if !z.names[name] {
		c.names = make(map[string]bool, len(z.names)+2)
		for n := range z.names {
			c.names[n] = true
		}
		for n := name; n != z.Origin; {
			c.names[n] = true
			i, _ := dns.NextLabel(n, 0)
			n = n[i:]
		}
	}
	soa := dns.Copy(z.SOA).(*dns.SOA)
	soa.Serial = serial
	c.SOA = soa
	c.nodes[z.Origin] = cloneNode(c.nodes[z.Origin])
	c.nodes[z.Origin][dns.TypeSOA] = []dns.RR{soa}
	return c
}

func cloneNode(n map[uint16][]dns.RR) map[uint16][]dns.RR {
	c := make(map[uint16][]dns.RR, len(n))
	for k, v := range n {
		c[k] = v
	}
	return c
}

// zoneFor returns the zone with the longest origin that contains name.
func zoneFor(zones []*Zone, name string) *Zone {
	var best *Zone
	for _, z := range zones {
		if dns.IsSubDomain(z.Origin, name) && (best == nil || len(z.Origin) > len(best.Origin)) {
			best = z
		}
	}
	return best
}

// String names the zone for messages.
func (z *Zone) String() string {
	return strings.TrimSpace(fmt.Sprintf("%s (%s)", z.Origin, z.File))
}
