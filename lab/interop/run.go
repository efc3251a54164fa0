package interop

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/echlab/echlab/resolver"
	"github.com/echlab/echlab/server"
)

// Config configures Run. The zero value runs every browser and case with
// output in ./interop-out.
type Config struct {
	Dir      string        // output directory; "" means "interop-out"
	Browsers []string      // names from BrowserNames; nil means all
	Cases    []string      // names from Cases; nil means all
	Timeout  time.Duration // bound of one browser run; 0 means 60 s
	Progress io.Writer     // one line per case as it ends; nil discards
}

// Result is one browser on one case.
type Result struct {
	Browser string `json:"browser"`
	Version string `json:"version"`
	Case    string `json:"case"`
	URL     string `json:"url"`
	Verdict
	DurationMS float64 `json:"duration_ms"` // the browser process, start to exit
	// HandshakeMS is the server's handshake time of each connection.
	HandshakeMS []float64 `json:"handshake_ms"`
	ExitCode    int       `json:"exit_code"`
	TimedOut    bool      `json:"timed_out"`
	PageLoaded  bool      `json:"page_loaded"` // Chromium: the DOM holds the trace; Firefox: a screenshot
	Page        string    `json:"page,omitempty"`
	Dir         string    `json:"dir"` // the case's files, relative to the output directory
	// DNS lists the browser's DoH queries for lab names ("QNAME QTYPE
	// RCODE"), in order; queries for other names (the browser's background
	// services) are answered REFUSED and left out.
	DNS []string `json:"dns"`
	// Connections are the server's records of the case's connections:
	// those logged while it ran, settled once the capture is compared
	// (see settleRecords).
	Connections []server.ConnRecord `json:"connections"`
	// ClientRandoms are the ClientHello randoms (hex) in the browser's
	// SSLKEYLOGFILE of the case (KeylogFile): the capture's flows are
	// joined to the case by them.
	ClientRandoms []string `json:"client_randoms,omitempty"`
	// Start and End bound the case's run: the capture's flows that start
	// in between, and that no random or logged client port joined, belong
	// to it (compare.md warns about those).
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Observed is the capture's view of the case (nil until compared).
	Observed *Observed `json:"observed,omitempty"`
}

// Report is the whole run: what results.json holds.
type Report struct {
	Started   time.Time `json:"started"`
	DoHURL    string    `json:"doh_url"`
	Port      int       `json:"server_port"`
	StaleID   uint8     `json:"stale_config_id"`
	CurrentID uint8     `json:"current_config_id"`
	Results   []Result  `json:"results"`
	// Capture sums up the live capture and its comparison.
	Capture CaptureSummary `json:"capture"`
}

// CaptureSummary names the capture's files and counts what Compare read.
type CaptureSummary struct {
	File     string   `json:"file"` // relative to the output directory
	Packets  int      `json:"packets"`
	Flows    int      `json:"flows"`
	Warnings []string `json:"warnings,omitempty"`
}

// Failed returns the results whose outcome is Fail.
func (r *Report) Failed() []Result {
	var out []Result
	for _, x := range r.Results {
		if x.Outcome == Fail {
			out = append(out, x)
		}
	}
	return out
}

// Run starts the lab, runs each browser on each case and writes
// results.json and results.txt to cfg.Dir. The process must be isolated
// (see Isolate). A case that fails makes the error wrap ErrCaseFailed; the
// report is returned and written anyway.
func Run(cfg Config) (*Report, error) {
	cfg, bs, cs, err := cfg.populate()
	if err != nil {
		return nil, err
	}
	if err := Isolated(); err != nil {
		return nil, err
	}
	if err := UnsegmentUDP(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("interop: %w", err)
	}
	l, err := StartLab(cfg.Dir)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	capt, err := l.StartCapture("lo")
	if err != nil {
		return nil, err
	}
	defer capt.Stop()
	rep := &Report{Started: time.Now().UTC(), DoHURL: l.DoHURL, Port: l.Port, StaleID: l.StaleID, CurrentID: l.CurrentID}
	for _, b := range bs {
		version := b.version(cfg.Dir)
		for _, c := range cs {
			res, err := l.runCase(b, c, cfg.Timeout)
			if err != nil {
				return rep, err
			}
			res.Version = version
			rep.Results = append(rep.Results, res)
			fmt.Fprintf(cfg.Progress, "interop: %-8s %-6s %-13s ech=%s retries=%d %.1fs\n",
				b.Name, c.Name, res.Outcome, res.ECH, res.Retries, res.DurationMS/1000)
		}
	}
	oerr := l.Observe(rep, capt)
	if err := rep.write(cfg.Dir); err != nil {
		return rep, err
	}
	if oerr != nil {
		return rep, fmt.Errorf("interop: comparing the capture: %w", oerr)
	}
	if f := rep.Failed(); len(f) > 0 {
		return rep, fmt.Errorf("%w: %d of %d (see %s)", ErrCaseFailed, len(f), len(rep.Results), filepath.Join(cfg.Dir, "results.txt"))
	}
	return rep, nil
}

// populate fills in defaults and resolves the browser and case names.
func (c Config) populate() (Config, []Browser, []Case, error) {
	if c.Dir == "" {
		c.Dir = "interop-out"
	}
	if c.Timeout <= 0 {
		c.Timeout = 60 * time.Second
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	names := c.Browsers
	if len(names) == 0 {
		names = BrowserNames
	}
	var bs []Browser
	for _, n := range names {
		b, ok := browsers[n]
		if !ok {
			return c, nil, nil, fmt.Errorf("%w: unknown browser %q (want %s)", ErrBrowser, n, strings.Join(BrowserNames, ", "))
		}
		if _, err := exec.LookPath(b.Path); err != nil {
			return c, nil, nil, fmt.Errorf("%w: %s is not installed: %v", ErrBrowser, b.Path, err)
		}
		bs = append(bs, b)
	}
	cs := Cases
	if len(c.Cases) > 0 {
		cs = nil
		for _, n := range c.Cases {
			i := slices.IndexFunc(Cases, func(x Case) bool { return x.Name == n })
			if i < 0 {
				return c, nil, nil, fmt.Errorf("interop: unknown case %q", n)
			}
			cs = append(cs, Cases[i])
		}
	}
	return c, bs, cs, nil
}

// runCase runs one browser on one case in a fresh profile and judges it
// from the server's records of the run.
func (l *Lab) runCase(b Browser, c Case, limit time.Duration) (Result, error) {
	rel := b.Name + "-" + c.Name
	dir := filepath.Join(l.Dir, rel)
	if err := os.RemoveAll(dir); err != nil {
		return Result{}, fmt.Errorf("interop: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Result{}, fmt.Errorf("interop: %w", err)
	}
	args, env, err := b.setup(l, c, dir)
	if err != nil {
		return Result{}, err
	}
	mark, qmark := l.Log.Mark(), l.Queries.Mark()
	start := time.Now()
	o, err := b.run(dir, args, env, limit)
	if err != nil {
		return Result{}, err
	}
	// The browser has exited. Records of connections the server is still
	// finishing may come later: Observe settles them with the capture
	// (settleRecords), which says which connection belongs to which case.
	end := time.Now()
	randoms, err := keylogRandoms(filepath.Join(dir, KeylogFile))
	if err != nil {
		return Result{}, err
	}
	res := Result{Browser: b.Name, Case: c.Name, URL: l.URL(c.Host),
		DurationMS: float64(o.Duration.Microseconds()) / 1000, ExitCode: o.ExitCode, TimedOut: o.TimedOut,
		Dir: rel, Connections: l.Log.Since(mark), DNS: labQueries(l.Queries.Since(qmark)), ClientRandoms: randoms,
		Start: start, End: end}
	res.PageLoaded, res.Page = pageLoaded(b, dir)
	l.decide(&res)
	return res, nil
}

// decide judges res from its Connections (sorting them by time): the
// server's verdict, and for a known browser, a pass whose page did not
// load fails and a failed h3 case of a browser that need not do HTTP/3
// is "not supported".
func (l *Lab) decide(res *Result) {
	c := Case{Name: res.Case}
	if i := slices.IndexFunc(Cases, func(x Case) bool { return x.Name == res.Case }); i >= 0 {
		c = Cases[i]
	}
	slices.SortStableFunc(res.Connections, func(a, b server.ConnRecord) int { return a.Time.Compare(b.Time) })
	res.Verdict = l.judge(c, res.Connections)
	res.HandshakeMS = nil
	for _, r := range res.Connections {
		res.HandshakeMS = append(res.HandshakeMS, r.HandshakeMS)
	}
	b, ok := browsers[res.Browser]
	if !ok {
		return
	}
	if res.Outcome == Pass && !res.PageLoaded {
		res.Outcome, res.Why = Fail, res.Why+"; but the page did not load"
	}
	if c.Name == "h3" && res.Outcome == Fail && !b.h3Required {
		res.Outcome = NotSupported
	}
}

// pageLoaded says whether the browser got the page: Chromium dumps the
// trace (which holds "sni=") to stdout, Firefox writes a screenshot.
func pageLoaded(b Browser, dir string) (bool, string) {
	if b.Name == "firefox" {
		st, err := os.Stat(filepath.Join(dir, "screenshot.png"))
		return err == nil && st.Size() > 0, ""
	}
	out, err := os.ReadFile(filepath.Join(dir, "stdout.log"))
	if err != nil {
		return false, ""
	}
	page := strings.TrimSpace(string(out))
	return strings.Contains(page, "sni="), page
}

// labQueries formats the queries for names in the lab zone.
func labQueries(qs []resolver.QueryLogEntry) []string {
	var out []string
	for _, q := range qs {
		if strings.HasSuffix(q.QName, ".lab.test.") {
			out = append(out, q.QName+" "+q.QType+" "+q.Rcode)
		}
	}
	return out
}
