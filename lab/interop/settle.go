package interop

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/echlab/echlab/lab/observe"
	"github.com/echlab/echlab/server"
)

// recordWait bounds how long Observe waits for the server's records of the
// TCP connections the capture saw. The server logs a TCP connection when
// its handshake ends, which the browser's exit (closing the connection)
// brings about at once; the bound only stops a server that never logs from
// hanging the run.
const recordWait = 10 * time.Second

// claim says that the capture saw a connection of one result.
type claim struct {
	result int       // index in Report.Results
	start  time.Time // the flow's first packet
}

// settleRecords gives each result the server records of its own
// connections, as the capture's flows (joined by ClientHello random, or
// by the client port the server logged) say they are. A record the server
// wrote after its case ended (it finishes a connection's handshake after
// the browser has exited) was taken by a later case, or by none; the
// capture moves it back. First it waits, woken by each record the server
// writes, for at most wait, until the server has logged every TCP
// connection to it that the capture joined to a case. (QUIC connections
// are not waited for: a failed QUIC handshake is logged only when its idle
// timeout ends; the one that carried the page was logged before its
// response.) Records that no flow claims stay with the case they were
// logged in. Each result is judged again from its settled records. It
// returns a warning per TCP flow whose record did not come.
func (l *Lab) settleRecords(rep *Report, obs *observe.Report, wait time.Duration) []string {
	index := map[string]int{}
	for i, r := range rep.Results {
		index[r.Browser+"/"+r.Case] = i
	}
	claims := map[string][]claim{} // by recordKey
	var tcp []*observe.Flow
	for _, f := range obs.Flows {
		i, ok := index[f.Scenario]
		if !ok || int(f.Server.Port()) != l.Port || (f.ScenarioBy != observe.JoinClientRandom && f.ScenarioBy != observe.JoinClientPort) {
			continue
		}
		if f.Transport != observe.TransportTCP && f.Transport != observe.TransportQUIC {
			continue
		}
		k := f.Transport + " " + f.Client.String()
		claims[k] = append(claims[k], claim{result: i, start: f.Start})
		if f.Transport == observe.TransportTCP {
			tcp = append(tcp, f)
		}
	}
	logged := func(recs []server.ConnRecord) map[string]bool {
		m := map[string]bool{}
		for _, r := range recs {
			m[recordKey(r)] = true
		}
		return m
	}
	var warnings []string
	if !l.Log.waitFor(0, wait, func(recs []server.ConnRecord) bool {
		m := logged(recs)
		return !slices.ContainsFunc(tcp, func(f *observe.Flow) bool { return !m[observe.TransportTCP+" "+f.Client.String()] })
	}) {
		m := logged(l.Log.Since(0))
		for _, f := range tcp {
			if !m[observe.TransportTCP+" "+f.Client.String()] {
				warnings = append(warnings, fmt.Sprintf("the server logged no record, within %v, of flow %d (%s, tcp from %s)", wait, f.ID, f.Scenario, f.Client))
			}
		}
	}
	// Where each record was logged: the case that ran then.
	loggedIn := map[string]int{}
	for i, r := range rep.Results {
		for _, c := range r.Connections {
			loggedIn[recordKey(c)+" "+c.Time.String()] = i
		}
	}
	settled := make([][]server.ConnRecord, len(rep.Results))
	for _, rec := range l.Log.Since(0) {
		i, ok := owner(claims[recordKey(rec)], rec.Time)
		if !ok {
			i, ok = loggedIn[recordKey(rec)+" "+rec.Time.String()]
		}
		if ok {
			settled[i] = append(settled[i], rec)
		}
	}
	for i := range rep.Results {
		rep.Results[i].Connections = settled[i]
		l.decide(&rep.Results[i])
	}
	return warnings
}

// owner picks, among the results whose flows have a record's transport and
// client address, the one whose flow started nearest the record's time (a
// client port used again in a later case).
func owner(cs []claim, t time.Time) (int, bool) {
	if len(cs) == 0 {
		return 0, false
	}
	best := slices.MinFunc(cs, func(a, b claim) int {
		return cmp.Compare(absDuration(a.start.Sub(t)), absDuration(b.start.Sub(t)))
	})
	return best.result, true
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// recordKey is a record's transport and client address, as the observer
// names a flow ("tcp 127.0.0.1:50123", "quic 127.0.0.1:40000").
func recordKey(r server.ConnRecord) string { return r.Transport + " " + r.ClientAddr }
