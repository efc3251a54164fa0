package lab

import (
	"cmp"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/echlab/echlab/client"
	"github.com/echlab/echlab/resolver"
)

// PlayReadyCheck labels, in scenarios.jsonl, the flows of Play's wait
// for the lab (DNS queries and TCP dials before the first case).
const PlayReadyCheck = "ready-check"

// playSettle is how far past its end the last case's time window reaches
// (see windows): the fallback join, for flows no random or DNS id joins.
const playSettle = 150 * time.Millisecond

// PlayScenarios lists every scenario Play knows, PlayDefault the ones it
// plays when none are named: the views of Scenarios with a PlaySpec, in
// name order, the fault run's (PlaySpec.ResolverDown, only when named)
// last. The client-runner role of the docker lab (lab/docker/) plays them
// against remote servers through a remote resolver; the resolver-down ones
// are the fault run (the resolver is stopped while they play).
var (
	PlayScenarios = playNames(func(p *PlaySpec) bool { return true })
	PlayDefault   = playNames(func(p *PlaySpec) bool { return p.Default })
)

// playNames lists the scenarios with a PlaySpec that keep accepts, in name
// order, the ResolverDown ones last.
func playNames(keep func(*PlaySpec) bool) []string {
	var up, down []string
	for _, s := range Scenarios {
		switch {
		case s.Play == nil || !keep(s.Play):
		case s.Play.ResolverDown:
			down = append(down, s.Name)
		default:
			up = append(up, s.Name)
		}
	}
	slices.Sort(up)
	slices.Sort(down)
	return append(up, down...)
}

// PlayConfig configures Play. DNS and RootCAs are required; the names
// default to the docker lab's.
type PlayConfig struct {
	OutDir  string            // client.jsonl, scenarios.jsonl, sslkeylog.txt; "" means "out"
	DNS     map[string]string // DNS transport (DNSDo53, …) → resolver URL
	RootCAs *x509.CertPool    // the lab CA (servers and encrypted DNS)

	Scenarios  []string // nil means PlayDefault
	Transports []string // ech-shared's DNS transports; nil means every one in DNS
	SecretName string   // shared-mode name behind ECH; "" means SecretName
	SplitName  string   // split-mode name behind ECH; "" means "hidden.lab.test"
	// Port is the ECH servers' HTTPS port, in URLs and HTTPS owner names
	// (_PORT._https.NAME); 0 means 443.
	Port int
	// BaselineAddr is the baseline server (IP:port): baseline fetches
	// SecretName there without ECH.
	BaselineAddr string
	// FallbackAddr is where resolver-down-fallback connects (IP:port of
	// the shared server) once DNS has failed.
	FallbackAddr string

	// ReadyTimeout bounds the wait for the resolver and the servers before
	// the first case; 0 does not wait (the fault run).
	ReadyTimeout time.Duration
	CaseTimeout  time.Duration // one case; 0 means 15 s
	// RotationWait bounds stale-retry: seeing the resolver publish a new
	// config, then the server reject the old one; 0 means 120 s.
	RotationWait time.Duration
	Progress     io.Writer // one line per case; nil prints nothing
}

// PlayResult is what Play did.
type PlayResult struct {
	Cases  []CaseResult `json:"cases"`
	Failed int          `json:"failed"`
}

type player struct {
	cfg    PlayConfig
	keylog io.Writer
	prog   *Progress
}

// Play runs the client-runner role: it waits for the lab, plays each
// scenario through the configured resolver URLs against the remote
// servers, and writes client.jsonl (one CaseResult per line),
// scenarios.jsonl (what joins each flow to its case for Compare: the
// case's ClientHello randoms and Do53 query ids, its time window last) and
// sslkeylog.txt into OutDir. It returns ErrScenarioFailed, with the
// result, when a case did not do what its scenario expects.
func Play(ctx context.Context, cfg PlayConfig) (*PlayResult, error) {
	cfg, cases, err := cfg.populate()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	kl, err := os.OpenFile(filepath.Join(cfg.OutDir, FileKeylog), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	defer kl.Close()
	cl, err := os.Create(filepath.Join(cfg.OutDir, FileClient))
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	defer cl.Close()
	p := &player{cfg: cfg, keylog: &lockedWriter{w: kl}, prog: &Progress{W: cfg.Progress, Total: len(cases)}}
	readyStart := time.Now()
	ready := &readyRecord{caseRecord: newCaseRecord(p.keylog)}
	if cfg.ReadyTimeout > 0 {
		if err := p.waitReady(ctx, ready); err != nil {
			return nil, err
		}
	}
	res := &PlayResult{}
	enc := json.NewEncoder(cl)
	for _, c := range cases {
		cr := p.runCase(ctx, c)
		res.Cases = append(res.Cases, cr)
		if err := enc.Encode(cr); err != nil {
			return res, fmt.Errorf("lab: writing %s: %w", FileClient, err)
		}
		p.prog.Case(c, cr.Outcome, cr.End.Sub(cr.Start), cr.Detail)
		if cr.Outcome == OutcomeFailed {
			res.Failed++
		}
	}
	if err := writeScenarioMap(cfg.OutDir, windows(res.Cases), false); err != nil {
		return res, err
	}
	if len(res.Cases) > 0 {
		for _, r := range ready.rules(readyStart, res.Cases[0].Start) {
			if err := appendJSONLine(filepath.Join(cfg.OutDir, FileScenarios), r); err != nil {
				return res, err
			}
		}
	}
	if res.Failed > 0 {
		return res, fmt.Errorf("%w: %d of %d cases failed", ErrScenarioFailed, res.Failed, len(cases))
	}
	return res, nil
}

func (c PlayConfig) populate() (PlayConfig, []Case, error) {
	c.OutDir = cmp.Or(c.OutDir, "out")
	c.SecretName = cmp.Or(c.SecretName, SecretName)
	c.SplitName = cmp.Or(c.SplitName, "hidden.lab.test")
	c.Port = cmp.Or(c.Port, 443)
	if c.CaseTimeout <= 0 {
		c.CaseTimeout = 15 * time.Second
	}
	if c.RotationWait <= 0 {
		c.RotationWait = 120 * time.Second
	}
	if len(c.DNS) == 0 || c.RootCAs == nil {
		return c, nil, fmt.Errorf("lab: play needs resolver URLs and the lab CA")
	}
	for t := range c.DNS {
		if !slices.Contains(AllTransports, t) {
			return c, nil, fmt.Errorf("%w: DNS transport %q", ErrScenario, t)
		}
	}
	scen := c.Scenarios
	if len(scen) == 0 {
		scen = PlayDefault
	}
	trs := c.Transports
	if len(trs) == 0 {
		for _, t := range AllTransports {
			if c.DNS[t] != "" {
				trs = append(trs, t)
			}
		}
	}
	var cases []Case
	for _, s := range scen {
		if !slices.Contains(PlayScenarios, s) {
			return c, nil, fmt.Errorf("%w %q (play knows: %s)", ErrScenario, s, strings.Join(PlayScenarios, ","))
		}
		ts := []string{DNSDoH}
		if sc, _ := LookupScenario(s); sc.playSpec().EveryTransport {
			ts = trs
		}
		for _, t := range ts {
			if c.DNS[t] == "" {
				return c, nil, fmt.Errorf("%w: %s needs a %s resolver URL", ErrScenario, s, t)
			}
			cases = append(cases, Case{Scenario: s, Transport: t, Repeat: 1})
		}
	}
	return c, cases, nil
}

// runCase plays one case and judges it.
func (p *player) runCase(ctx context.Context, c Case) (cr CaseResult) {
	cr = CaseResult{Case: c, Start: time.Now()}
	defer func() { cr.End = time.Now() }()
	play := c.scenario().playSpec()
	timeout := p.cfg.CaseTimeout
	if play.StaleFirst {
		timeout = p.cfg.RotationWait + p.cfg.CaseTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// The case records its ClientHello randoms and Do53 query ids, which
	// join the observer's flows to it exactly (scenarios.jsonl).
	rec := newCaseRecord(p.keylog)
	defer rec.fill(&cr)
	stub, err := p.stub(c.Transport, rec)
	if err != nil {
		cr.Outcome, cr.Detail = OutcomeFailed, err.Error()
		return cr
	}
	defer stub.Close()
	if c.Transport == DNSDo53 {
		stub = idStub{Client: stub, rec: rec}
	}
	switch {
	case play.StaleFirst:
		cr.Result, err = p.staleRetry(ctx, c, stub, rec)
	case play.ResolverDown:
		cr.Result, err = p.resolverDown(ctx, c, stub, rec)
		cr.Outcome, cr.Detail = judgeDown(c, cr.Result, err)
		return cr
	default:
		cr.Result, err = client.Fetch(ctx, p.url(c), p.options(c, stub, rec))
	}
	cr.Outcome, cr.Detail = judge(c, cr.Result, err)
	return cr
}

// stub is a DNS client for transport whose TLS secrets go to keylog.
func (p *player) stub(transport string, keylog io.Writer) (resolver.Client, error) {
	return resolver.NewClient(p.cfg.DNS[transport], resolver.ClientOptions{RootCAs: p.cfg.RootCAs,
		KeyLogWriter: keylog, Timeout: 4 * time.Second})
}

func (p *player) url(c Case) string {
	name := p.cfg.SecretName
	if c.scenario().Service == ServiceSplit {
		name = p.cfg.SplitName
	}
	return "https://" + net.JoinHostPort(name, strconv.Itoa(p.cfg.Port)) + "/api/conn"
}

// options are the client's for case c; its TLS secrets go to keylog,
// and, when keylog is the case's record, the random of every ClientHello
// it sends.
func (p *player) options(c Case, stub resolver.Client, keylog io.Writer) client.Options {
	o := client.Options{Resolver: stub, DNSTransport: c.Transport, DNSServer: p.cfg.DNS[c.Transport],
		RootCAs: p.cfg.RootCAs, KeyLog: keylog, Timeout: p.cfg.CaseTimeout,
		ConnectTimeout: 3 * time.Second, HandshakeTimeout: 5 * time.Second}
	if rec, ok := keylog.(*caseRecord); ok {
		o.OnClientHello = rec.clientHello
	}
	cs := c.scenario().Client
	o.Mode, o.HTTP3 = cs.Mode, cs.HTTP3
	if cs.Mode == client.ModeBaseline {
		o.ConnectTo = p.cfg.BaselineAddr
	}
	return o
}

func appendJSONLine(name string, v any) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	if err := json.NewEncoder(f).Encode(v); err != nil {
		f.Close()
		return fmt.Errorf("lab: writing %s: %w", name, err)
	}
	return f.Close()
}

// windows returns the cases with each End moved to the next case's Start
// (the last one's by playSettle): a live observer stamps packets when it
// reads them, a little after they crossed the wire, so a case's last flow
// can start on the capture's clock after the client saw the case end.
// client.jsonl keeps the true times.
func windows(cases []CaseResult) []CaseResult {
	out := slices.Clone(cases)
	for i := range out {
		if i+1 < len(out) {
			out[i].End = out[i+1].Start
		} else {
			out[i].End = out[i].End.Add(playSettle)
		}
	}
	return out
}
