package resolver

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// JSONMessage is a DNS response in the JSON format that public DoH
// services (Google, Cloudflare) serve as application/dns-json, so that
// curl and scripts can read answers.
type JSONMessage struct {
	Status     int            `json:"Status"`
	TC         bool           `json:"TC"`
	RD         bool           `json:"RD"`
	RA         bool           `json:"RA"`
	AD         bool           `json:"AD"`
	CD         bool           `json:"CD"`
	Question   []JSONQuestion `json:"Question"`
	Answer     []JSONRecord   `json:"Answer,omitempty"`
	Authority  []JSONRecord   `json:"Authority,omitempty"`
	Additional []JSONRecord   `json:"Additional,omitempty"`
}

// JSONQuestion is one entry of JSONMessage.Question.
type JSONQuestion struct {
	Name string `json:"name"`
	Type uint16 `json:"type"`
}

// JSONRecord is one resource record: Data is its RDATA in zone-file
// presentation format (for HTTPS: `1 . alpn="h2" ech="…"`).
type JSONRecord struct {
	Name string `json:"name"`
	Type uint16 `json:"type"`
	TTL  uint32 `json:"TTL"`
	Data string `json:"data"`
}

// NewJSONMessage converts a DNS message to the JSON format. The OPT
// pseudo-record is left out.
func NewJSONMessage(m *dns.Msg) *JSONMessage {
	j := &JSONMessage{
		Status:     m.Rcode,
		TC:         m.Truncated,
		RD:         m.RecursionDesired,
		RA:         m.RecursionAvailable,
		AD:         m.AuthenticatedData,
		CD:         m.CheckingDisabled,
		Question:   make([]JSONQuestion, 0, len(m.Question)),
		Answer:     jsonRecords(m.Answer),
		Authority:  jsonRecords(m.Ns),
		Additional: jsonRecords(m.Extra),
	}
	for _, q := range m.Question {
		j.Question = append(j.Question, JSONQuestion{Name: q.Name, Type: q.Qtype})
	}
	return j
}

func jsonRecords(rrs []dns.RR) []JSONRecord {
	var out []JSONRecord
	for _, rr := range rrs {
		h := rr.Header()
		if h.Rrtype == dns.TypeOPT {
			continue
		}
		data := strings.TrimPrefix(rr.String(), h.String())
		out = append(out, JSONRecord{Name: h.Name, Type: h.Rrtype, TTL: h.Ttl, Data: data})
	}
	return out
}

// parseJSONQuery builds a query from the parameters of a JSON request:
// name (required), type (a mnemonic like HTTPS or a number; default A),
// cd and do (1 or true). The query has ID 0 and RD set, as a stub's would.
// Errors are *dohError with status 400.
func parseJSONQuery(v url.Values) (*dns.Msg, error) {
	name := v.Get("name")
	if name == "" {
		return nil, dohErr(400, errDoHMissingQuery, "no name parameter")
	}
	if len(name) > 253+1 {
		return nil, dohErr(400, errDoHBadQuery, "name longer than 253 octets")
	}
	name = dns.Fqdn(name)
	if _, ok := dns.IsDomainName(name); !ok {
		return nil, dohErr(400, errDoHBadQuery, fmt.Sprintf("name %q is not a domain name", name))
	}
	qtype, err := parseQType(v.Get("type"))
	if err != nil {
		return nil, err
	}
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Id = 0
	m.CheckingDisabled = isTrue(v.Get("cd"))
	if isTrue(v.Get("do")) {
		m.SetEdns0(dns.DefaultMsgSize, true)
	}
	return m, nil
}

func parseQType(s string) (uint16, error) {
	if s == "" {
		return dns.TypeA, nil
	}
	if n, err := strconv.ParseUint(s, 10, 16); err == nil {
		return uint16(n), nil
	}
	if t, ok := dns.StringToType[strings.ToUpper(s)]; ok {
		return t, nil
	}
	return 0, dohErr(400, errDoHBadQuery, fmt.Sprintf("unknown type %q", s))
}

func isTrue(s string) bool {
	return s == "1" || strings.EqualFold(s, "true")
}
