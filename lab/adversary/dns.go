package adversary

import (
	"strconv"

	"github.com/echlab/echlab/lab/capture"
	"github.com/miekg/dns"
)

// dns handles a DNS message on a Do53 relay (UDP datagram or TCP message
// without its length prefix). A query is logged and its name recorded as
// a Sighting; an answer is rewritten by the DNS policies in column order
// and repacked (with compression) once. A message that does not unpack,
// or whose rewrite does not pack, is passed as it is.
func (a *Adversary) dns(f capture.Flow, toServer bool, b []byte) ([]byte, capture.Verdict) {
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		return b, capture.Pass
	}
	d := Decision{Flow: f, Action: capture.Pass.String()}
	if len(m.Question) > 0 {
		d.QName, d.QType = canonicalName(m.Question[0].Name), typeName(m.Question[0].Qtype)
	}
	if toServer || !m.Response {
		var saw []Sighting
		for _, q := range m.Question {
			saw = append(saw, Sighting{Flow: f, Kind: SawDNSQuery, Name: canonicalName(q.Name)})
		}
		a.record(saw, d)
		return b, capture.Pass
	}
	var rewrites []Decision
	for i, p := range a.policies {
		if detail := p.rewrite(m); detail != "" {
			r := d
			r.Policy, r.Action, r.Detail = a.names[i], "rewrite", detail
			rewrites = append(rewrites, r)
		}
	}
	if len(rewrites) == 0 {
		a.record(nil, d)
		return b, capture.Pass
	}
	m.Compress = true
	out, err := m.Pack()
	if err != nil {
		d.Detail = "rewritten answer does not pack: " + err.Error()
		a.record(nil, d)
		return b, capture.Pass
	}
	a.record(nil, rewrites...)
	return out, capture.Pass
}

// rewrite applies a DNS policy to an answer and says what it changed
// ("" when nothing).
func (p Policy) rewrite(m *dns.Msg) string {
	switch p.Kind {
	case StripECH:
		return stripECH(m)
	case DropHTTPSRR:
		return dropHTTPSRR(m)
	case Poison:
		return p.poison(m)
	}
	return ""
}

// stripECH removes the ech SvcParam from every HTTPS and SVCB record of
// every section.
func stripECH(m *dns.Msg) string {
	n := 0
	for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			s := svcbOf(rr)
			if s == nil {
				continue
			}
			kept := s.Value[:0:0]
			for _, kv := range s.Value {
				if kv.Key() != dns.SVCB_ECHCONFIG {
					kept = append(kept, kv)
				}
			}
			if len(kept) != len(s.Value) {
				s.Value = kept
				n++
			}
		}
	}
	if n == 0 {
		return ""
	}
	return "removed ech from " + plural(n, "HTTPS/SVCB RR")
}

// svcbOf returns the SVCB body of an HTTPS or SVCB record, else nil.
func svcbOf(rr dns.RR) *dns.SVCB {
	switch r := rr.(type) {
	case *dns.HTTPS:
		return &r.SVCB
	case *dns.SVCB:
		return r
	}
	return nil
}

// dropHTTPSRR removes HTTPS and SVCB records from the answer and
// additional sections: an answer that held only them becomes NODATA.
func dropHTTPSRR(m *dns.Msg) string {
	isSVCB := func(rr dns.RR) bool { return svcbOf(rr) != nil }
	n := 0
	m.Answer, n = removeRRs(m.Answer, isSVCB, n)
	m.Extra, n = removeRRs(m.Extra, isSVCB, n)
	if n == 0 {
		return ""
	}
	return "removed " + plural(n, "HTTPS/SVCB RR")
}

// removeRRs returns rrs without those drop selects, and n plus how many
// it removed.
func removeRRs(rrs []dns.RR, drop func(dns.RR) bool, n int) ([]dns.RR, int) {
	out := rrs[:0:0]
	for _, rr := range rrs {
		if drop(rr) {
			n++
			continue
		}
		out = append(out, rr)
	}
	return out, n
}

func typeName(t uint16) string {
	if s, ok := dns.TypeToString[t]; ok {
		return s
	}
	return "TYPE" + strconv.Itoa(int(t))
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}
