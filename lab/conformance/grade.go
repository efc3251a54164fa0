package conformance

import (
	"fmt"
	"slices"
	"strings"
)

// Grade is a cell's verdict.
type Grade string

// Grades.
const (
	Pass Grade = "pass"
	Fail Grade = "fail"
	NA   Grade = "n.a." // the case does not apply to the client
)

// Cell is one client in one case.
type Cell struct {
	Client Client `json:"client"`
	Grade  Grade  `json:"grade"`
	// Why is the one-line evidence: the rule broken for a fail, what the
	// client did for a pass, why the case does not apply for n.a.
	Why      string   `json:"why"`
	Evidence Evidence `json:"evidence"`
}

// CaseResult is one case's row.
type CaseResult struct {
	Case  Case   `json:"case"`
	Cells []Cell `json:"cells"`
}

// naDiscovery is why a Discovery case is n.a. for the Go column.
const naDiscovery = "Go has no HTTPS-record resolver: this program uses echlab's client.Discover, graded in the echlab column"

// grade judges ev against c's expectation.
func grade(c Case, cl Client, ev Evidence) Cell {
	cell := Cell{Client: cl, Evidence: ev}
	if c.Discovery && cl == ClientGo {
		cell.Grade, cell.Why = NA, naDiscovery
		return cell
	}
	if why := violation(c, &ev); why != "" {
		cell.Grade, cell.Why = Fail, why+"; "+summary(&ev)
		return cell
	}
	cell.Grade, cell.Why = Pass, summary(&ev)
	return cell
}

// violation returns the first rule of the case the evidence breaks, or "".
func violation(c Case, ev *Evidence) string {
	x := c.Expect
	for _, h := range ev.Hellos {
		if h.ECH == "real" && containsID(c.DNS.skippedIDs(), *h.ConfigID) {
			return fmt.Sprintf("offered ECH with config id %d, which RFC 9849 says to skip", *h.ConfigID)
		}
	}
	if !slices.Contains(x.Outcomes, ev.Outcome) {
		return fmt.Sprintf("outcome %s, expected %s", ev.Outcome, joinOutcomes(x.Outcomes))
	}
	if x.ConfigID != 0 {
		if first := firstOffer(ev.Hellos); first != nil && *first.ConfigID != x.ConfigID {
			return fmt.Sprintf("first ECH offer used config id %d, expected %d", *first.ConfigID, x.ConfigID)
		}
	}
	if x.MaxHellos > 0 && len(ev.Hellos) > x.MaxHellos {
		return fmt.Sprintf("%d ClientHellos, at most %d allowed", len(ev.Hellos), x.MaxHellos)
	}
	if x.NoClearName {
		for _, h := range ev.Hellos {
			if strings.EqualFold(strings.TrimSuffix(h.SNI, "."), SecretName) {
				return "the true name went in a cleartext SNI"
			}
		}
	}
	if n := ev.httpsQueries(); x.MaxHTTPSQueries > 0 && n > x.MaxHTTPSQueries {
		return fmt.Sprintf("%d HTTPS queries, at most %d allowed", n, x.MaxHTTPSQueries)
	}
	if n := ev.queriesOf("SVCB"); x.NoSVCBQueries && n > 0 {
		return fmt.Sprintf("%d SVCB queries for an https origin", n)
	}
	return ""
}

// firstOffer is the first hello with a real ECH offer, or nil.
func firstOffer(hs []Hello) *Hello {
	for i := range hs {
		if hs[i].ECH == "real" {
			return &hs[i]
		}
	}
	return nil
}

func joinOutcomes(os []Outcome) string {
	s := make([]string, len(os))
	for i, o := range os {
		s[i] = string(o)
	}
	return strings.Join(s, " or ")
}

// summary is what the client did, in one line: outcome, the hellos on
// the wire, the DNS queries, and its error.
func summary(ev *Evidence) string {
	s := fmt.Sprintf("%s; wire: %s; dns: %d HTTPS queries%s", ev.Outcome, ev.wire(), ev.httpsQueries(), transports(ev.Queries))
	if ev.Error != "" {
		s += "; error (" + ev.ErrorClass + "): " + firstLine(ev.Error)
	}
	return s
}

// transports names the DNS transports the queries came over: " (udp, tcp)".
func transports(qs []Query) string {
	var ts []string
	for _, q := range qs {
		if !slices.Contains(ts, q.Transport) {
			ts = append(ts, q.Transport)
		}
	}
	if len(ts) == 0 {
		return ""
	}
	return " (" + strings.Join(ts, ", ") + ")"
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
