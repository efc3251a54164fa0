package interop

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/echlab/echlab/lab/adversary"
	"github.com/echlab/echlab/lab/capture"
	"github.com/echlab/echlab/resolver"
	"github.com/echlab/echlab/server"
)

// Outcomes of a grid cell (the same words as the embedded lab's grid).
const (
	GridECH        = "ech"         // connected, ECH accepted, the page loaded: the name hidden
	GridECHRetried = "ech-retried" // the same after retry configs
	GridClear      = "clear"       // connected without ECH: the true name in the clear SNI (fail-open)
	GridGREASE     = "grease"      // connected with GREASE ECH: the true name in the clear SNI
	GridFailed     = "failed"      // no page: Error says the browser's error
)

// Leak channels: where the adversary saw the true name in the clear.
const (
	LeakSNI = "sni" // a ClientHello's server_name
	LeakDNS = "dns" // a Do53 query
)

// settleTimeout bounds the wait, after the browser exited, for the
// server's records of the connections the adversary let through.
const settleTimeout = 5 * time.Second

// GridCell is one row (a browser configuration) against one column (the
// adversary's policies), the browser loading the ech case's page.
type GridCell struct {
	Row    string `json:"row"`
	Column string `json:"column"`

	Outcome string `json:"outcome"`
	// Error is the browser's own error when the page did not load:
	// Chromium's net error from its NetLog, Firefox's nsresult from
	// MOZ_LOG (or "timeout" when the run hit its bound).
	Error    string `json:"error,omitempty"`
	ECH      string `json:"ech,omitempty"`       // the server's ECH status of the deciding connection
	OuterSNI string `json:"outer_sni,omitempty"` // of the deciding connection
	Retries  int    `json:"retries,omitempty"`
	// Leaks are where the adversary saw the true name: LeakSNI, LeakDNS.
	Leaks []string `json:"leaks,omitempty"`
	// DNS is what the browser asked the resolver about lab names,
	// "TRANSPORT QNAME QTYPE RCODE", in order (after the adversary: a
	// query it dropped is not here).
	DNS        []string `json:"dns,omitempty"`
	PageLoaded bool     `json:"page_loaded"`
	TimedOut   bool     `json:"timed_out"`
	// DurationMS is the browser process, start to exit.
	DurationMS float64 `json:"duration_ms"`

	// Expected is what RFC 9849 has a compliant client of the row's kind
	// reach against the column, Why the reason; AsExpected whether the
	// outcome is one of them (a deviation otherwise).
	Expected   []string `json:"expected"`
	Why        string   `json:"why"`
	AsExpected bool     `json:"as_expected"`

	// What the adversary matched (policy → count), saw and did.
	Counts    map[string]int       `json:"counts,omitempty"`
	Saw       string               `json:"saw"` // one line: what it did to what
	Decisions []adversary.Decision `json:"decisions"`
	Sightings []adversary.Sighting `json:"sightings"`

	Connections []server.ConnRecord `json:"connections"`
	Dir         string              `json:"dir"` // the browser's files, relative to the output directory
}

// runCell runs the row's browser on the ech case with a fresh adversary
// applying col in the relays, and judges the cell.
func (l *Lab) runCell(obs *capture.Observer, row GridRow, col []adversary.Policy, limit time.Duration) (GridCell, error) {
	c := Cases[slices.IndexFunc(Cases, func(x Case) bool { return x.Name == "ech" })]
	cell := GridCell{Row: row.Name, Column: adversary.Join(col), Dir: cellDir(row.Name, adversary.Join(col))}
	dir := filepath.Join(l.Dir, cell.Dir)
	if err := os.RemoveAll(dir); err != nil {
		return cell, fmt.Errorf("interop: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return cell, fmt.Errorf("interop: %w", err)
	}
	b := row.browser()
	args, env, err := b.setup(l, c, dir)
	if err != nil {
		return cell, err
	}
	a := adversary.New(col)
	obs.SetFilter(a)
	mark, qmark := l.Log.Mark(), l.Queries.Mark()
	o, err := b.run(dir, args, env, limit)
	if err != nil {
		return cell, err
	}
	// Every connection the adversary let through to the server ends in a
	// server record: wait for them (the server logs a connection when it
	// closes, which may be just after the browser exited).
	reached := reachedServer(a.Decisions())
	l.Log.waitFor(mark, settleTimeout, func(r []server.ConnRecord) bool { return len(r) >= reached })
	obs.SetFilter(adversary.New(nil))

	cell.DurationMS, cell.TimedOut = float64(o.Duration.Microseconds())/1000, o.TimedOut
	cell.Connections = l.Log.Since(mark)
	cell.DNS = transportQueries(l.Queries.Since(qmark))
	cell.PageLoaded, _ = pageLoaded(b, dir)
	cell.Decisions, cell.Sightings, cell.Counts = a.Decisions(), a.Seen(), a.Counts()
	cell.Saw = saw(cell.Decisions, cell.Counts)
	cell.Leaks = leaks(cell.Sightings, c.Host)
	l.classify(&cell, c, dir)
	cell.Expected, cell.Why = expectedCell(row, col)
	cell.AsExpected = len(cell.Expected) == 0 || slices.Contains(cell.Expected, cell.Outcome)
	return cell, nil
}

// classify sets the cell's outcome from the server's records of it and,
// when no page came, the browser's error.
func (l *Lab) classify(cell *GridCell, c Case, dir string) {
	v := l.judge(c, cell.Connections)
	cell.Retries = v.Retries
	cell.ECH, cell.OuterSNI = v.ECH, v.OuterSNI
	accepted := v.Outcome == Pass
	clear := slices.IndexFunc(cell.Connections, func(r server.ConnRecord) bool {
		return r.OuterSNI == c.Host && r.Error == "" && r.ALPN != ""
	})
	switch {
	case accepted && cell.PageLoaded && v.Retries > 0:
		cell.Outcome = GridECHRetried
	case accepted && cell.PageLoaded:
		cell.Outcome = GridECH
	case clear >= 0 && cell.PageLoaded:
		r := cell.Connections[clear]
		cell.ECH, cell.OuterSNI = r.ECH, r.OuterSNI
		cell.Outcome = GridClear
		// An ECH extension with the true name as the outer SNI is GREASE:
		// a client offering a real config sends the config's public name.
		// The server logs it "rejected" when the GREASE config id happens
		// to be one it has held (1 in 128 here: the lab held two ids).
		if r.ECH == server.ECHGrease || r.ECH == server.ECHRejected {
			cell.Outcome = GridGREASE
		}
	default:
		cell.Outcome = GridFailed
		cell.Error = browserError(cell.Row, dir)
		if cell.Error == "" && cell.TimedOut {
			cell.Error = "timeout"
		}
		if accepted {
			cell.Error = strings.TrimPrefix(cell.Error+"; ", "; ") + "ECH accepted, yet the page did not load"
		}
	}
}

// reachedServer counts the TCP connections the adversary passed on to the
// ECH server (including those it reset only after the server's reply).
func reachedServer(ds []adversary.Decision) int {
	n := 0
	for _, d := range ds {
		if d.Flow.Role == RoleServer && d.Flow.Proto == "tcp" && (d.Action == capture.Pass.String() || d.Action == capture.ResetAfterReply.String()) {
			n++
		}
	}
	return n
}

// leaks are the channels on which the adversary saw host in the clear: a
// ClientHello's SNI, or a Do53 query for host or a name under it (the
// HTTPS record's _PORT._https.host).
func leaks(seen []adversary.Sighting, host string) []string {
	var out []string
	for _, s := range seen {
		ch := ""
		switch {
		case s.Kind == adversary.SawSNI && s.Name == host:
			ch = LeakSNI
		case s.Kind == adversary.SawDNSQuery && (s.Name == host || strings.HasSuffix(s.Name, "."+host)):
			ch = LeakDNS
		}
		if ch != "" && !slices.Contains(out, ch) {
			out = append(out, ch)
		}
	}
	slices.Sort(out)
	return out
}

// saw sums up what the adversary did: each policy that matched, how often
// and with which actions, or "passed N connections" in the control
// column.
func saw(ds []adversary.Decision, counts map[string]int) string {
	var parts []string
	for _, p := range slices.Sorted(maps.Keys(counts)) {
		if counts[p] == 0 {
			parts = append(parts, p+": no match")
			continue
		}
		acts := map[string]int{}
		for _, d := range ds {
			if d.Policy == p {
				acts[string(d.Flow.Role)+" "+d.Action]++
			}
		}
		var a []string
		for _, k := range slices.Sorted(maps.Keys(acts)) {
			a = append(a, fmt.Sprintf("%s ×%d", k, acts[k]))
		}
		parts = append(parts, p+": "+strings.Join(a, ", "))
	}
	if len(parts) == 0 {
		return fmt.Sprintf("no policy; %d connections and messages seen", len(ds))
	}
	return strings.Join(parts, "; ")
}

// transportQueries formats the resolver's queries for lab names with
// their transport.
func transportQueries(qs []resolver.QueryLogEntry) []string {
	var out []string
	for _, q := range qs {
		if strings.HasSuffix(q.QName, ".lab.test.") {
			out = append(out, q.Transport+" "+q.QName+" "+q.QType+" "+q.Rcode)
		}
	}
	return out
}

// progressLine is the cell's line on the progress writer.
func (c GridCell) progressLine() string {
	return fmt.Sprintf("interop grid: %-13s %-40s %s %.1fs", c.Row, c.Column, c.short(), c.DurationMS/1000)
}
