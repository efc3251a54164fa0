package observe

import (
	"encoding/binary"
	"time"

	"github.com/echlab/echlab/resolver"
	"github.com/miekg/dns"
)

// DNSMessage is what an observer reads from one plain DNS message (Do53
// over UDP or TCP).
type DNSMessage struct {
	Time     time.Time `json:"time"`
	ID       uint16    `json:"id"`
	Response bool      `json:"response"`
	Name     string    `json:"qname"`
	Type     string    `json:"qtype"`
	Rcode    string    `json:"rcode,omitempty"`   // responses only
	Answers  int       `json:"answers,omitempty"` // answer section records
	HasECH   bool      `json:"has_ech,omitempty"` // an HTTPS/SVCB answer carried ech=
}

// parseDNS reads one DNS message. Messages that do not unpack return false.
func parseDNS(b []byte, ts time.Time) (DNSMessage, bool) {
	var m dns.Msg
	if err := m.Unpack(b); err != nil || len(m.Question) == 0 {
		return DNSMessage{}, false
	}
	q := m.Question[0]
	out := DNSMessage{Time: ts, ID: m.Id, Response: m.Response, Name: q.Name, Type: dns.Type(q.Qtype).String()}
	if m.Response {
		out.Rcode = dns.RcodeToString[m.Rcode]
		out.Answers = len(m.Answer)
		out.HasECH = answersHaveECH(m.Answer)
	}
	return out, true
}

// answersHaveECH reports whether an HTTPS or SVCB record carries the ech
// SvcParam (key 5).
func answersHaveECH(rrs []dns.RR) bool {
	for _, rr := range rrs {
		if _, ok := resolver.ECHParam(rr); ok {
			return true
		}
	}
	return false
}

// parseDNSStream reads the 2-byte length-prefixed messages of DNS over TCP
// (RFC 1035 §4.2.2). It stops at a partial or unreadable message and says
// whether the stream held garbage.
func parseDNSStream(b []byte, ts time.Time) (msgs []DNSMessage, garbage bool) {
	for len(b) >= 2 {
		n := int(binary.BigEndian.Uint16(b))
		if len(b)-2 < n {
			return msgs, false
		}
		m, ok := parseDNS(b[2:2+n], ts)
		if !ok {
			return msgs, true
		}
		msgs = append(msgs, m)
		b = b[2+n:]
	}
	return msgs, false
}
