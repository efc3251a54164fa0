package interop

import (
	"fmt"
	"slices"

	"github.com/echlab/echlab/server"
)

// Outcomes of a case.
const (
	Pass         = "pass"
	Fail         = "fail"
	NotSupported = "not supported"
)

// Case is one thing a browser is asked to do.
type Case struct {
	Name string // "ech", "grease", "retry", "h3"
	Host string // the lab name the browser loads
	What string // what should happen, for the report
}

// Cases are the cases of the suite, in run order.
var Cases = []Case{
	{"ech", SecretName, "HTTPS record with ech=: ECH accepted over HTTP/2"},
	{"grease", PlainName, "no HTTPS record: GREASE ECH, unknown config id, handshake succeeds"},
	{"retry", StaleName, "stale ech= after rotation: rejected, retry configs, then accepted"},
	{"h3", H3Name, "HTTPS record alpn=h3 with ech=: ECH accepted over HTTP/3"},
}

// Verdict is what the server's records say about one case.
type Verdict struct {
	Outcome   string `json:"outcome"`     // Pass, Fail or NotSupported
	ECH       string `json:"ech"`         // the ECH status of the deciding connection
	OuterSNI  string `json:"outer_sni"`   // of the deciding connection
	InnerSNI  string `json:"inner_sni"`   // of the deciding connection
	Grease    bool   `json:"grease"`      // a connection carried GREASE ECH
	Retries   int    `json:"retries"`     // rejected with retry configs, then accepted on the same transport: the browser retried
	ALPN      string `json:"alpn"`        // of the deciding connection
	Transport string `json:"transport"`   // "tcp" or "quic"
	ConfigIDs []int  `json:"config_ids"`  // every config id the browser named, in order
	Client    string `json:"client_addr"` // of the deciding connection, as the server logged it
	Why       string `json:"why"`         // what was expected and what was seen
}

// judge decides a case from the server records of its window.
func (l *Lab) judge(c Case, recs []server.ConnRecord) Verdict {
	v := Verdict{Outcome: Fail}
	// Records are logged when a connection ends: put them in the order
	// the connections were accepted.
	recs = slices.Clone(recs)
	slices.SortStableFunc(recs, func(a, b server.ConnRecord) int { return a.Time.Compare(b.Time) })
	for i, r := range recs {
		if r.ConfigID != nil {
			v.ConfigIDs = append(v.ConfigIDs, int(*r.ConfigID))
		}
		v.Grease = v.Grease || r.ECH == server.ECHGrease
		if r.ECH == server.ECHRejected && r.RetryConfigs && slices.ContainsFunc(recs[i+1:], func(a server.ConnRecord) bool {
			return a.ECH == server.ECHAccepted && a.Transport == r.Transport
		}) {
			v.Retries++
		}
	}
	var ok bool
	switch c.Name {
	case "ech":
		ok = v.decide(recs, func(r server.ConnRecord) bool { return l.accepted(r, c.Host, "tcp") })
	case "grease":
		ok = v.decide(recs, func(r server.ConnRecord) bool { return l.greased(r) && r.ECH == server.ECHGrease }) ||
			v.decide(recs, l.greased)
	case "retry":
		ok = v.decide(recs, func(r server.ConnRecord) bool { return l.accepted(r, c.Host, "tcp") }) &&
			slices.ContainsFunc(recs, l.rejectedStale)
	case "h3":
		ok = v.decide(recs, func(r server.ConnRecord) bool { return l.accepted(r, c.Host, "quic") })
	}
	if ok {
		v.Outcome = Pass
	}
	v.Why = l.why(c, ok, len(recs))
	return v
}

// decide fills v from the first record that matches, or from the last
// record when none does, and says whether one matched.
func (v *Verdict) decide(recs []server.ConnRecord, match func(server.ConnRecord) bool) bool {
	i := slices.IndexFunc(recs, match)
	if i < 0 && len(recs) == 0 {
		return false
	}
	r := recs[len(recs)-1]
	if i >= 0 {
		r = recs[i]
	}
	v.ECH, v.OuterSNI, v.InnerSNI, v.ALPN, v.Transport = r.ECH, r.OuterSNI, r.InnerSNI, r.ALPN, r.Transport
	v.Client = r.ClientAddr
	return i >= 0
}

// accepted: ECH accepted with the current config for host over transport,
// with HTTP/2 over TCP.
func (l *Lab) accepted(r server.ConnRecord, host, transport string) bool {
	if r.ECH != server.ECHAccepted || r.InnerSNI != host || r.OuterSNI != PublicName || r.Transport != transport || r.Error != "" {
		return false
	}
	if transport == "quic" {
		return r.ALPN == "h3"
	}
	return r.ALPN == "h2" && r.ConfigID != nil && *r.ConfigID == l.CurrentID
}

// greased: an ECH extension with a config id the server never held, the
// real name in the outer SNI, and a completed handshake. A GREASE id that
// happens to equal one the server held is logged "rejected"; it still has
// the real name outside and completes.
func (l *Lab) greased(r server.ConnRecord) bool {
	if r.OuterSNI != PlainName || r.Error != "" || r.ALPN != "h2" || r.ConfigID == nil {
		return false
	}
	collided := r.ECH == server.ECHRejected && (*r.ConfigID == l.StaleID || *r.ConfigID == l.CurrentID)
	return r.ECH == server.ECHGrease || collided
}

// rejectedStale: the stale config id, rejected with retry configs.
func (l *Lab) rejectedStale(r server.ConnRecord) bool {
	return r.ECH == server.ECHRejected && r.ConfigID != nil && *r.ConfigID == l.StaleID &&
		r.RetryConfigs && r.OuterSNI == PublicName
}

// why explains the verdict.
func (l *Lab) why(c Case, ok bool, n int) string {
	want := map[string]string{
		"ech":    fmt.Sprintf("want ech=accepted, outer %s, inner %s, config id %d, h2", PublicName, c.Host, l.CurrentID),
		"grease": fmt.Sprintf("want a GREASE ECH extension (config id not held), outer SNI %s, h2, no error", c.Host),
		"retry": fmt.Sprintf("want config id %d rejected with retry configs, then ech=accepted inner %s config id %d",
			l.StaleID, c.Host, l.CurrentID),
		"h3": fmt.Sprintf("want ech=accepted over QUIC with h3, inner %s", c.Host),
	}[c.Name]
	if ok {
		return want + ": seen"
	}
	return fmt.Sprintf("%s: not seen in %d server connection records", want, n)
}
