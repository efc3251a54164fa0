package lab

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"time"

	"github.com/echlab/echlab/client"
	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/internal/pki"
)

// ErrScenarioFailed is returned by Run when at least one case failed; the
// output folder and the RunResult are complete all the same.
var ErrScenarioFailed = errors.New("lab: scenario failed")

// Capture kinds of RunConfig.Capture and RunResult.Capture.
const (
	CaptureAuto  = "auto"  // live when the process may capture, else synth
	CaptureLive  = "live"  // packet socket on lo (root or CAP_NET_RAW)
	CaptureSynth = "synth" // recording relays in front of every listener
)

// RunConfig configures Run. The zero value runs the default matrix into
// ./out with a fresh CA and key sets and prints nothing.
type RunConfig struct {
	OutDir  string // "" means "out"
	KeysDir string // key sets to reuse (or create); "" means OutDir/keys
	PKIDir  string // lab CA to reuse (or create); "" means OutDir/pki

	Scenarios  []string // nil means every default scenario (see Plan)
	Transports []string // nil means the default rule (see Plan); "all"
	Repeat     int      // runs of each case; 0 means 1
	H3         bool     // also run ech-shared over HTTP/3 (ech-shared-h3)
	Capture    string   // CaptureAuto (""), CaptureLive or CaptureSynth

	// Progress receives one line per finished case; nil prints nothing.
	Progress io.Writer
	// CaseTimeout bounds one case; 0 means 20 s.
	CaseTimeout time.Duration
}

// CaseResult is one case as it ran: a line of client.jsonl.
type CaseResult struct {
	Case
	Outcome     Outcome        `json:"outcome"`
	Detail      string         `json:"detail,omitempty"`
	Start       time.Time      `json:"start"`
	End         time.Time      `json:"end"`
	ClientPorts []int          `json:"client_ports,omitempty"`
	Result      *client.Result `json:"result,omitempty"`
}

// RunResult is what Run did and where it wrote it.
type RunResult struct {
	OutDir  string       `json:"out_dir"`
	Capture string       `json:"capture"` // CaptureLive or CaptureSynth
	Cases   []CaseResult `json:"cases"`
	Report  *Report      `json:"-"`
	Rows    []Row        `json:"rows"`
	Files   []string     `json:"files"` // written, relative to OutDir
	Failed  int          `json:"failed"`
	Skipped int          `json:"skipped"`
}

func (c RunConfig) populate() (RunConfig, error) {
	if c.OutDir == "" {
		c.OutDir = "out"
	}
	if c.KeysDir == "" {
		c.KeysDir = filepath.Join(c.OutDir, "keys")
	}
	if c.PKIDir == "" {
		c.PKIDir = filepath.Join(c.OutDir, "pki")
	}
	switch c.Capture {
	case "", CaptureAuto:
		c.Capture = CaptureAuto
	case CaptureLive, CaptureSynth:
	default:
		return c, fmt.Errorf("lab: capture %q: want auto, live or synth", c.Capture)
	}
	if c.CaseTimeout <= 0 {
		c.CaseTimeout = 20 * time.Second
	}
	return c, nil
}

// Run starts every lab component in this process on loopback, runs the
// scenario matrix through the observer (live capture or recording relays),
// compares what the observer saw, and writes the output folder (see
// lab/README.md). It returns ErrScenarioFailed, with a complete result,
// when a case failed.
func Run(ctx context.Context, cfg RunConfig) (*RunResult, error) {
	cfg, err := cfg.populate()
	if err != nil {
		return nil, err
	}
	cases, err := Plan(cfg.Scenarios, cfg.Transports, cfg.Repeat, cfg.H3)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	out, err := openOutputs(cfg.OutDir)
	if err != nil {
		return nil, err
	}
	defer out.close()
	prog := &Progress{W: cfg.Progress, Total: len(cases)}
	res := &RunResult{OutDir: cfg.OutDir}

	s, capt, err := startLab(cfg, out, prog)
	if err != nil {
		return nil, err
	}
	res.Capture = capt.kind()
	prog.Phase("lab up (%s capture): %d cases", res.Capture, len(cases))
	for _, c := range cases {
		cr := s.runCase(ctx, c)
		res.Cases = append(res.Cases, cr)
		out.writeCase(cr)
		prog.Case(c, cr.Outcome, cr.End.Sub(cr.Start), cr.Detail)
		switch cr.Outcome {
		case OutcomeFailed:
			res.Failed++
		case OutcomeSkipped:
			res.Skipped++
		}
		if ctx.Err() != nil {
			break
		}
	}
	// Let the last server records and relay copies land before stopping.
	time.Sleep(100 * time.Millisecond)
	stopErr := errors.Join(s.close(), capt.stop())
	if err := finish(cfg, s, res, out, prog); err != nil {
		return res, err
	}
	if stopErr != nil {
		prog.Phase("warning: stopping the lab: %v", stopErr)
	}
	if res.Failed > 0 {
		return res, fmt.Errorf("%w: %d of %d cases failed", ErrScenarioFailed, res.Failed, len(cases))
	}
	return res, nil
}

// startLab makes the CA and key sets, starts the capture and every
// component.
func startLab(cfg RunConfig, out *outputs, prog *Progress) (*stack, capturer, error) {
	prog.Phase("lab CA in %s, key sets in %s", cfg.PKIDir, cfg.KeysDir)
	ca, err := pki.LoadOrCreate(cfg.PKIDir)
	if err != nil {
		return nil, nil, err
	}
	s := &stack{cfg: cfg, ca: ca, keysDir: cfg.KeysDir, skipped: map[string]string{},
		serverLog: out.server, keylog: out.keylog}
	if err := s.loadKeys(); err != nil {
		return nil, nil, err
	}
	capt, err := startCapture(cfg, out, s)
	if err != nil {
		return nil, nil, err
	}
	start := func() error {
		if err := s.startServers(); err != nil {
			return err
		}
		return s.startResolver(cfg.OutDir, cfg.PKIDir, out.queries)
	}
	if err := start(); err != nil {
		s.close()
		capt.stop()
		return nil, nil, err
	}
	if err := capt.ready(s); err != nil {
		s.close()
		capt.stop()
		return nil, nil, err
	}
	return s, capt, nil
}

// Output file names inside RunConfig.OutDir.
const (
	FileCapture    = "capture.pcapng"
	FileKeylog     = "sslkeylog.txt"
	FileClient     = "client.jsonl"
	FileServer     = "server.jsonl"
	FileQueries    = "queries.jsonl"
	FileScenarios  = "scenarios.jsonl"
	FileReport     = "report.md"
	FileFlowsJSON  = "flows.json"
	FileFlowsJSONL = "flows.jsonl"
	FileFlowsCSV   = "flows.csv"
	FileSummary    = "summary.json"
	FileManifest   = "manifest.json"
	FileZone       = "lab.test.zone"
)

// outputs are the files written while the cases run.
type outputs struct {
	dir                     string
	keylog, server, queries io.Writer
	clientEnc, scenEnc      *json.Encoder
	files                   []*os.File
}

func openOutputs(dir string) (*outputs, error) {
	o := &outputs{dir: dir}
	open := func(name string, perm os.FileMode) (*os.File, error) {
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, perm)
		if err != nil {
			o.close()
			return nil, fmt.Errorf("lab: %w", err)
		}
		o.files = append(o.files, f)
		return f, nil
	}
	var err error
	var f *os.File
	if f, err = open(FileKeylog, 0o600); err != nil { // secrets: 0600
		return nil, err
	}
	o.keylog = &lockedWriter{w: f}
	if f, err = open(FileServer, 0o644); err != nil {
		return nil, err
	}
	o.server = &lockedWriter{w: f}
	if f, err = open(FileQueries, 0o644); err != nil {
		return nil, err
	}
	o.queries = &lockedWriter{w: f}
	if f, err = open(FileClient, 0o644); err != nil {
		return nil, err
	}
	o.clientEnc = json.NewEncoder(f)
	return o, nil
}

// scenarioLabel is how flows of a case are labelled in the report: one
// row per scenario × DNS transport.
func scenarioLabel(c Case) string { return rowScenario(c) + "/" + c.Transport }

// rowScenario is a case's scenario as reports show it: padding-sweep is
// split by padding policy (padding-sweep-default, padding-sweep-none).
func rowScenario(c Case) string {
	if c.Scenario == "padding-sweep" {
		return c.Scenario + "-" + c.Padding
	}
	return c.Scenario
}

// writeCase appends a case to client.jsonl.
func (o *outputs) writeCase(cr CaseResult) {
	o.clientEnc.Encode(cr) //nolint:errcheck // checked when the files close
}

// scenarioLine is one line of scenarios.jsonl: a ScenarioRule for Compare
// plus the case it stands for.
type scenarioLine struct {
	ScenarioRule
	Transport string `json:"transport"`
	Repeat    int    `json:"repeat"`
	Case      string `json:"case"`
	InnerName string `json:"inner_name,omitempty"`
	Padding   string `json:"padding,omitempty"`
}

// writeScenarioMap writes scenarios.jsonl: for each case, a rule per
// client port the servers and the resolver logged during it (live
// captures only: in synth mode they log the relay's ports), then a rule
// for its time window. Compare uses the first rule that matches a flow.
func writeScenarioMap(dir string, cases []CaseResult, live bool) error {
	if live {
		addClientPorts(dir, cases)
	}
	var lines []scenarioLine
	for _, cr := range cases {
		l := scenarioLine{ScenarioRule: ScenarioRule{Scenario: scenarioLabel(cr.Case)}, Transport: cr.Transport,
			Repeat: cr.Repeat, Case: cr.Label(), InnerName: cr.InnerName, Padding: cr.Padding}
		for _, p := range cr.ClientPorts {
			pl := l
			pl.ClientPort = uint16(p)
			lines = append(lines, pl)
		}
		l.Start, l.End = cr.Start, cr.End
		lines = append(lines, l)
	}
	return writeFile(filepath.Join(dir, FileScenarios), func(w io.Writer) error {
		enc := json.NewEncoder(w)
		for _, l := range lines {
			if err := enc.Encode(l); err != nil {
				return err
			}
		}
		return nil
	})
}

// addClientPorts reads the client addresses of server.jsonl and
// queries.jsonl and gives each port to the case that was running when it
// was logged.
func addClientPorts(dir string, cases []CaseResult) {
	type entry struct {
		Time       time.Time `json:"time"`
		ClientAddr string    `json:"client_addr"` // server.jsonl
		Client     string    `json:"client"`      // queries.jsonl
	}
	for _, name := range []string{FileServer, FileQueries} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			continue
		}
		for _, line := range bytes.Split(b, []byte("\n")) {
			var e entry
			if json.Unmarshal(line, &e) != nil {
				continue
			}
			p := int(port(cmp.Or(e.ClientAddr, e.Client)))
			for i := range cases {
				c := &cases[i]
				if p != 0 && !e.Time.Before(c.Start) && !e.Time.After(c.End) && !slices.Contains(c.ClientPorts, p) {
					c.ClientPorts = append(c.ClientPorts, p)
				}
			}
		}
	}
}

func (o *outputs) close() error {
	var errs []error
	for _, f := range o.files {
		errs = append(errs, f.Close())
	}
	o.files = nil
	return errors.Join(errs...)
}

// finish compares the capture and writes the reports, summary.json and
// manifest.json.
func finish(cfg RunConfig, s *stack, res *RunResult, out *outputs, prog *Progress) error {
	if err := out.close(); err != nil {
		return fmt.Errorf("lab: closing outputs: %w", err)
	}
	if err := writeScenarioMap(cfg.OutDir, res.Cases, res.Capture == CaptureLive); err != nil {
		return err
	}
	prog.Phase("comparing what the observer captured")
	rep, cmpErr := compareRun(cfg.OutDir, s.allKeys())
	if cmpErr != nil {
		// Still write what the cases say, and say why the observer's
		// side is missing.
		rep = &Report{Warnings: []string{"compare failed: " + cmpErr.Error()}}
	}
	res.Report = rep
	res.Rows = buildRows(res.Cases, rep, s.servicePorts())
	writers := []struct {
		name string
		fn   func(io.Writer) error
	}{
		{FileReport, func(w io.Writer) error { return writeReportMD(w, res) }},
		{FileFlowsJSON, func(w io.Writer) error { return writeJSON(w, rep) }},
		{FileFlowsJSONL, func(w io.Writer) error { return WriteJSON(w, rep) }},
		{FileFlowsCSV, func(w io.Writer) error { return WriteCSV(w, rep) }},
		{FileSummary, func(w io.Writer) error {
			return writeJSON(w, map[string]any{"schema": 1, "capture": res.Capture, "rows": res.Rows})
		}},
	}
	for _, wr := range writers {
		if err := writeFile(filepath.Join(cfg.OutDir, wr.name), wr.fn); err != nil {
			return err
		}
	}
	return errors.Join(cmpErr, writeManifest(cfg, res))
}

// compareRun runs Compare on the run's capture with every key set, the
// keylog and the scenario map.
func compareRun(dir string, keys ech.KeyList) (*Report, error) {
	opts := CompareOptions{Keys: keys}
	if f, err := os.Open(filepath.Join(dir, FileScenarios)); err == nil {
		opts.Scenarios, err = ReadScenarioMap(f)
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	if f, err := os.Open(filepath.Join(dir, FileKeylog)); err == nil {
		opts.Keylog, err = ReadKeylog(f)
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	f, err := os.Open(filepath.Join(dir, FileCapture))
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	defer f.Close()
	return Compare(f, opts)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func writeFile(name string, fn func(io.Writer) error) error {
	f, err := os.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	if err := fn(f); err != nil {
		f.Close()
		return fmt.Errorf("lab: writing %s: %w", name, err)
	}
	return f.Close()
}

// writeReportMD writes report.md: the at-a-glance comparison, the
// verdicts, the cases, then Compare's flow-by-flow report.
func writeReportMD(w io.Writer, res *RunResult) error {
	fmt.Fprintf(w, "# echlab run\n\n%d cases: %d failed, %d skipped. Capture: %s.\n\n## At a glance\n\n```\n",
		len(res.Cases), res.Failed, res.Skipped, res.Capture)
	if err := WriteGlance(w, res.Rows, res.Capture); err != nil {
		return err
	}
	fmt.Fprint(w, "```\n\n## Cases\n\n| case | outcome | detail |\n|---|---|---|\n")
	for _, c := range res.Cases {
		fmt.Fprintf(w, "| %s | %s | %s |\n", md(c.Label()), c.Outcome, md(c.Detail))
	}
	fmt.Fprintln(w)
	return WriteMarkdown(w, res.Report)
}

// ManifestSchema is the version of manifest.json's layout.
const ManifestSchema = 1

// writeManifest writes manifest.json: versions, capture kind and every
// file of the output folder with its size.
func writeManifest(cfg RunConfig, res *RunResult) error {
	type file struct {
		Name  string `json:"name"`
		Bytes int64  `json:"bytes"`
	}
	var files []file
	entries, err := os.ReadDir(cfg.OutDir)
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	for _, e := range entries {
		if info, err := e.Info(); err == nil && info.Mode().IsRegular() && e.Name() != FileManifest {
			files = append(files, file{e.Name(), info.Size()})
			res.Files = append(res.Files, e.Name())
		}
	}
	res.Files = append(res.Files, FileManifest)
	deps := map[string]string{}
	echlab := map[string]string{}
	if bi, ok := debug.ReadBuildInfo(); ok {
		echlab["version"] = bi.Main.Version
		for _, st := range bi.Settings {
			if st.Key == "vcs.revision" || st.Key == "vcs.modified" || st.Key == "vcs.time" {
				echlab[st.Key] = st.Value
			}
		}
		for _, d := range bi.Deps {
			deps[d.Path] = d.Version
		}
	}
	m := map[string]any{
		"schema": ManifestSchema, "tool": "echlab run", "created": time.Now().UTC(),
		"echlab": echlab, "go": runtime.Version(), "modules": deps,
		"capture": res.Capture, "synthesized": res.Capture == CaptureSynth,
		"keys_dir": cfg.KeysDir, "pki_dir": cfg.PKIDir,
		"scenarios": cfg.Scenarios, "transports": cfg.Transports, "repeat": max(cfg.Repeat, 1),
		"cases": len(res.Cases), "failed": res.Failed, "skipped": res.Skipped, "files": files,
	}
	return writeFile(filepath.Join(cfg.OutDir, FileManifest), func(w io.Writer) error { return writeJSON(w, m) })
}
