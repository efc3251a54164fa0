package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/echlab/echlab/client"
	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/internal/pki"
	"github.com/echlab/echlab/lab/capture"
	"github.com/echlab/echlab/lab/observe"
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

	Scenarios  []string // nil means every default scenario
	Transports []string // nil means the default rule (see Plan); "all"
	Repeat     int      // runs of each case; 0 means 1
	H3         bool     // also run ech-shared over HTTP/3 (ech-shared-h3)
	Capture    string   // CaptureAuto (""), CaptureLive or CaptureSynth

	// Progress receives one line per finished case; nil prints nothing.
	Progress io.Writer
	// CaseTimeout bounds one case; 0 means 20 s.
	CaseTimeout time.Duration

	// filter, set by RunGrid, makes the observer's relays act (an
	// adversary); it needs the relays, so the capture is synth.
	filter capture.Filter
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

	// ClientRandoms are the ClientHello randoms (hex) of the case's TLS
	// and QUIC connections, DNS ones included; DNSIDs the ids of its Do53
	// queries. scenarios.jsonl joins flows to the case by them.
	ClientRandoms []string `json:"client_randoms,omitempty"`
	DNSIDs        []uint16 `json:"dns_ids,omitempty"`
}

// RunResult is what Run did and where it wrote it.
type RunResult struct {
	OutDir  string          `json:"out_dir"`
	Capture string          `json:"capture"` // CaptureLive or CaptureSynth
	Cases   []CaseResult    `json:"cases"`
	Report  *observe.Report `json:"-"`
	Rows    []Row           `json:"rows"`
	Files   []string        `json:"files"` // written, relative to OutDir
	Failed  int             `json:"failed"`
	Skipped int             `json:"skipped"`
	// CaptureLoss says, when the live capture lost packets (see
	// capture.ErrDropped), how many: verdicts may then miss flows.
	CaptureLoss string `json:"capture_loss,omitempty"`
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
// when a case failed, and else an error wrapping capture.ErrDropped when
// the live capture lost packets (RunResult.CaptureLoss, also in report.md
// and manifest.json).
func Run(ctx context.Context, cfg RunConfig) (*RunResult, error) {
	cfg, err := cfg.populate()
	if err != nil {
		return nil, err
	}
	cases, err := plan(cfg.Scenarios, cfg.Transports, cfg.Repeat, cfg.H3)
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
	// Closing the lab waits for its servers' and relays' goroutines, so
	// their last records are written; stopping the capture then reads what
	// the kernel still holds for it.
	stopErr := s.close()
	capErr := capt.stop()
	if errors.Is(capErr, capture.ErrDropped) {
		res.CaptureLoss = capErr.Error()
	} else {
		stopErr = errors.Join(stopErr, capErr)
	}
	if err := finish(cfg, s, res, out, prog); err != nil {
		return res, err
	}
	if stopErr != nil {
		prog.Phase("warning: stopping the lab: %v", stopErr)
	}
	if res.Failed > 0 {
		return res, fmt.Errorf("%w: %d of %d cases failed", ErrScenarioFailed, res.Failed, len(cases))
	}
	if res.CaptureLoss != "" {
		return res, fmt.Errorf("the verdicts may miss flows: %w", capErr)
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
	rep, cmpErr := compareRun(cfg.OutDir, s.allKeys(), s.esniKeySets())
	if cmpErr != nil {
		// Still write what the cases say, and say why the observer's
		// side is missing.
		rep = &observe.Report{Warnings: []string{"compare failed: " + cmpErr.Error()}}
	}
	res.Report = rep
	if cmpErr == nil {
		if err := writeCaptureWithKeys(cfg.OutDir, rep); err != nil {
			return err
		}
	}
	res.Rows = buildRows(res.Cases, rep, s.servicePorts())
	writers := []struct {
		name string
		fn   func(io.Writer) error
	}{
		{FileReport, func(w io.Writer) error { return writeReportMD(w, res) }},
		{FileFlowsJSON, func(w io.Writer) error { return writeJSON(w, rep) }},
		{FileFlowsJSONL, func(w io.Writer) error { return observe.WriteJSON(w, rep) }},
		{FileFlowsCSV, func(w io.Writer) error { return observe.WriteCSV(w, rep) }},
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
func compareRun(dir string, keys ech.KeyList, esni []*ech.ESNIKeySet) (*observe.Report, error) {
	opts := observe.CompareOptions{Keys: keys, ESNIKeys: esni}
	if f, err := os.Open(filepath.Join(dir, FileScenarios)); err == nil {
		opts.Scenarios, err = observe.ReadScenarioMap(f)
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	return compareDir(dir, opts)
}

// compareDir runs Compare on the capture in dir with opts and the keylog
// found there.
func compareDir(dir string, opts observe.CompareOptions) (*observe.Report, error) {
	if f, err := os.Open(filepath.Join(dir, FileKeylog)); err == nil {
		kl, err := observe.ParseKeylog(f)
		f.Close()
		if err != nil {
			return nil, err
		}
		opts.UseKeylog(kl)
	}
	f, err := os.Open(filepath.Join(dir, FileCapture))
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	defer f.Close()
	return observe.Compare(f, opts)
}
