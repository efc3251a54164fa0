package adversary

import (
	"net"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// poison rewrites the address records of p.Name in the answer and
// additional sections: those of p.Addr's family get p.Addr (one record
// per owner name), those of the other family are removed. A query for
// p.Name of p.Addr's family whose answer has no such record (NXDOMAIN,
// NODATA, an error) gets one injected, as an injecting censor answers:
// NOERROR, the authority section emptied. An answer whose name is a CNAME
// is left to the records of its target.
func (p Policy) poison(m *dns.Msg) string {
	want, other := dns.TypeA, dns.TypeAAAA
	if p.Addr.Is6() {
		want, other = other, want
	}
	var notes []string
	for _, sec := range []*[]dns.RR{&m.Answer, &m.Extra} {
		*sec = p.poisonSection(*sec, want, other, &notes)
	}
	if note := p.inject(m, want); note != "" {
		notes = append(notes, note)
	}
	return strings.Join(notes, "; ")
}

// poisonSection rewrites one section, appending what it changed to notes.
func (p Policy) poisonSection(rrs []dns.RR, want, other uint16, notes *[]string) []dns.RR {
	out := rrs[:0:0]
	given := map[string]bool{} // owner names that already got p.Addr
	for _, rr := range rrs {
		h := rr.Header()
		owner := canonicalName(h.Name)
		switch {
		case !nameMatches(p.Name, h.Name) || h.Rrtype != want && h.Rrtype != other:
			out = append(out, rr)
		case h.Rrtype == other:
			*notes = append(*notes, "removed "+typeName(other)+" "+owner+" "+addrOf(rr).String())
		case given[owner]:
			*notes = append(*notes, "removed "+typeName(want)+" "+owner+" "+addrOf(rr).String())
		default:
			given[owner] = true
			if old := addrOf(rr); old != p.Addr {
				*notes = append(*notes, typeName(want)+" "+owner+" "+old.String()+" → "+p.Addr.String())
			}
			out = append(out, p.addrRR(*h))
		}
	}
	return out
}

// inject adds an answer of p.Addr to a query for p.Name of type want that
// has none.
func (p Policy) inject(m *dns.Msg, want uint16) string {
	if m.Opcode != dns.OpcodeQuery || len(m.Question) != 1 {
		return ""
	}
	q := m.Question[0]
	if q.Qtype != want || q.Qclass != dns.ClassINET || !nameMatches(p.Name, q.Name) {
		return ""
	}
	for _, rr := range m.Answer {
		h := rr.Header()
		if strings.EqualFold(h.Name, q.Name) && (h.Rrtype == want || h.Rrtype == dns.TypeCNAME) {
			return ""
		}
	}
	m.Answer = append(m.Answer, p.addrRR(dns.RR_Header{Name: q.Name, Rrtype: want, Class: dns.ClassINET, Ttl: 60}))
	note := "injected " + typeName(want) + " " + canonicalName(q.Name) + " " + p.Addr.String()
	if m.Rcode != dns.RcodeSuccess {
		note += " (was " + dns.RcodeToString[m.Rcode] + ")"
	}
	m.Rcode, m.Ns = dns.RcodeSuccess, nil
	return note
}

// addrRR is an A or AAAA record of p.Addr with header h.
func (p Policy) addrRR(h dns.RR_Header) dns.RR {
	h.Rdlength = 0
	ip := net.IP(p.Addr.AsSlice())
	if p.Addr.Is4() {
		h.Rrtype = dns.TypeA
		return &dns.A{Hdr: h, A: ip}
	}
	h.Rrtype = dns.TypeAAAA
	return &dns.AAAA{Hdr: h, AAAA: ip}
}

// addrOf is the address of an A or AAAA record (the zero Addr otherwise).
func addrOf(rr dns.RR) netip.Addr {
	var ip net.IP
	switch r := rr.(type) {
	case *dns.A:
		ip = r.A
	case *dns.AAAA:
		ip = r.AAAA
	}
	a, _ := netip.AddrFromSlice(ip)
	if rr.Header().Rrtype == dns.TypeA {
		return a.Unmap()
	}
	return a
}
