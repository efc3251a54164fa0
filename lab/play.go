package lab

import (
	"bytes"
	"cmp"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/echlab/echlab/client"
	"github.com/echlab/echlab/resolver"
)

// Play scenarios: the client-runner role of the docker lab (lab/docker/)
// plays these against remote servers through a remote resolver. The
// names shared with Scenarios mean the same thing; the resolver-down ones
// are the fault run (the resolver is stopped while they play).
const (
	PlayResolverDown         = "resolver-down"          // fail closed with a DNS error, in bounded time
	PlayResolverDownFallback = "resolver-down-fallback" // told to fall back: connects without ECH, says why
)

// PlayReadyCheck labels, in scenarios.jsonl, the flows of Play's wait
// for the lab (DNS queries and TCP dials before the first case).
const PlayReadyCheck = "ready-check"

// playSettle is the pause before each case.
const playSettle = 150 * time.Millisecond

// PlayScenarios lists every scenario Play knows; PlayDefault the ones it
// plays when none are named.
var (
	PlayScenarios = []string{"baseline", "ech-shared", "ech-shared-h3", "ech-split", "grease", "stale-retry",
		PlayResolverDown, PlayResolverDownFallback}
	PlayDefault = []string{"baseline", "ech-shared", "ech-shared-h3", "ech-split", "grease", "stale-retry"}
)

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
// scenarios.jsonl (the time window of each case, for Compare) and
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
	if cfg.ReadyTimeout > 0 {
		if err := p.waitReady(ctx); err != nil {
			return nil, err
		}
	}
	res := &PlayResult{}
	enc := json.NewEncoder(cl)
	for _, c := range cases {
		// A pause between cases keeps each case's packets inside its own
		// time window even when the observer stamps them a little late.
		sleepCtx(ctx, playSettle) //nolint:errcheck // ctx ends the cases anyway
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
		ready := ScenarioRule{Scenario: PlayReadyCheck, Start: readyStart, End: res.Cases[0].Start}
		if err := appendJSONLine(filepath.Join(cfg.OutDir, FileScenarios), ready); err != nil {
			return res, err
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
		if s == "ech-shared" {
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
	timeout := p.cfg.CaseTimeout
	if c.Scenario == "stale-retry" {
		timeout = p.cfg.RotationWait + p.cfg.CaseTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	stub, err := p.stub(c.Transport)
	if err != nil {
		cr.Outcome, cr.Detail = OutcomeFailed, err.Error()
		return cr
	}
	defer stub.Close()
	switch c.Scenario {
	case "stale-retry":
		cr.Result, err = p.staleRetry(ctx, stub)
	case PlayResolverDown, PlayResolverDownFallback:
		cr.Result, err = p.resolverDown(ctx, c, stub)
		cr.Outcome, cr.Detail = judgeDown(c, cr.Result, err)
		return cr
	default:
		cr.Result, err = client.Fetch(ctx, p.url(c), p.options(c, stub))
	}
	cr.Outcome, cr.Detail = judge(c, cr.Result, err)
	return cr
}

func (p *player) stub(transport string) (resolver.Client, error) {
	return resolver.NewClient(p.cfg.DNS[transport], resolver.ClientOptions{RootCAs: p.cfg.RootCAs,
		KeyLogWriter: p.keylog, Timeout: 4 * time.Second})
}

func (p *player) url(c Case) string {
	if c.Scenario == "ech-split" {
		return "https://" + p.cfg.SplitName + "/api/conn"
	}
	return "https://" + p.cfg.SecretName + "/api/conn"
}

func (p *player) options(c Case, stub resolver.Client) client.Options {
	o := client.Options{Resolver: stub, DNSTransport: c.Transport, DNSServer: p.cfg.DNS[c.Transport],
		RootCAs: p.cfg.RootCAs, KeyLog: p.keylog, Timeout: p.cfg.CaseTimeout,
		ConnectTimeout: 3 * time.Second, HandshakeTimeout: 5 * time.Second}
	switch c.Scenario {
	case "baseline":
		o.Mode, o.ConnectTo = client.ModeBaseline, p.cfg.BaselineAddr
	case "grease":
		o.Mode = client.ModeGREASE
	case "ech-shared-h3":
		o.HTTP3 = true
	}
	return o
}

// staleRetry fetches the published config, waits until the resolver
// publishes another one (the server rotated and the resolver saw it),
// then connects with the old config until the server no longer accepts
// it: the server rejects it with retry configs and the client retries
// with them. Attempts while the old key is still in its grace period are
// counted in the note.
func (p *player) staleRetry(ctx context.Context, stub resolver.Client) (*client.Result, error) {
	d, err := client.Discover(ctx, stub, p.cfg.SecretName, 443, false)
	if err != nil {
		return &client.Result{Discovery: d}, err
	}
	if len(d.ConfigList) == 0 {
		return &client.Result{Discovery: d}, fmt.Errorf("lab: no ech in the HTTPS record of %s", d.Owner)
	}
	stale, t0 := d.ConfigList, time.Now()
	for {
		if err := sleepCtx(ctx, time.Second); err != nil {
			return &client.Result{Discovery: d}, fmt.Errorf("lab: the resolver published no new ECH config within %v: %w", p.cfg.RotationWait, err)
		}
		nd, err := client.Discover(ctx, stub, p.cfg.SecretName, 443, false)
		if err == nil && len(nd.ConfigList) > 0 && !bytes.Equal(nd.ConfigList, stale) {
			break
		}
	}
	rotated := time.Since(t0)
	graceHits := 0
	for {
		o := p.options(Case{Scenario: "stale-retry", Transport: DNSDoH}, stub)
		o.ConfigList = stale
		r, err := client.Fetch(ctx, p.url(Case{}), o)
		if err != nil || r.Retried || ctx.Err() != nil {
			r.Note = fmt.Sprintf("stale config from DNS; rotation published after %.1f s; stale config still accepted (grace) %d times before the rejection",
				rotated.Seconds(), graceHits)
			return r, err
		}
		graceHits++
		if err := sleepCtx(ctx, 2*time.Second); err != nil {
			r.Note = fmt.Sprintf("the server still accepted the stale config after %d attempts", graceHits)
			return r, nil // judge fails it: accepted without a retry
		}
	}
}

// resolverDown plays the fault run's cases with the resolver stopped:
// the ECH fetch must fail closed with a DNS error in bounded time; with
// resolver-down-fallback the client was told to fall back, and once DNS
// has failed it connects to FallbackAddr without ECH.
func (p *player) resolverDown(ctx context.Context, c Case, stub resolver.Client) (*client.Result, error) {
	o := p.options(c, stub)
	r, err := client.Fetch(ctx, p.url(c), o)
	if err == nil || c.Scenario == PlayResolverDown {
		return r, err
	}
	var ce *client.Error
	if !errors.As(err, &ce) || (ce.Class != client.ClassDNS && ce.Class != client.ClassTimeout) {
		return r, err
	}
	why := fmt.Sprintf("DNS failed (%s: %s)", ce.Class, r.Error)
	o.Resolver, o.ConnectTo, o.Policy = nil, p.cfg.FallbackAddr, client.PolicyFallback
	fr, ferr := client.Fetch(ctx, p.url(c), o)
	fr.Note = "fallback after the resolver failed: " + why
	if fr.FallbackReason == "" {
		fr.FallbackReason = why
	}
	return fr, ferr
}

// judgeDown says whether a resolver-down case failed closed, or fell
// back, as told.
func judgeDown(c Case, r *client.Result, err error) (Outcome, string) {
	var ce *client.Error
	if c.Scenario == PlayResolverDown {
		switch {
		case err == nil:
			return OutcomeFailed, "fetched although the resolver is down: ech=" + string(r.ECH)
		case errors.As(err, &ce) && (ce.Class == client.ClassDNS || ce.Class == client.ClassTimeout):
			return OutcomeOK, fmt.Sprintf("failed closed after %.1f s: %s", r.Total.Seconds(), err)
		}
		return OutcomeFailed, "failed, but not on DNS: " + err.Error()
	}
	switch {
	case err != nil:
		return OutcomeFailed, "fallback failed: " + err.Error()
	case r.ECH != client.ECHFallback || !r.Fallback:
		return OutcomeFailed, fmt.Sprintf("ech=%s, want fallback", r.ECH)
	}
	return OutcomeOK, fmt.Sprintf("fell back: outer SNI %s in the clear, status %d (%s)", r.OuterSNI, r.Status, r.Note)
}

// waitReady waits until every resolver URL answers the HTTPS query of
// the secret name with an ech value and every server accepts TCP.
func (p *player) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.ReadyTimeout)
	defer cancel()
	var addrs []string
	for _, t := range AllTransports {
		if p.cfg.DNS[t] == "" {
			continue
		}
		stub, err := p.stub(t)
		if err != nil {
			return err
		}
		for _, name := range []string{p.cfg.SecretName, p.cfg.SplitName} {
			d, err := retryUntil(ctx, func() (*client.Discovery, error) {
				d, err := client.Discover(ctx, stub, name, 443, true)
				if err == nil && len(d.ConfigList) == 0 {
					err = fmt.Errorf("lab: no ech in the HTTPS record of %s", name)
				}
				return d, err
			})
			if err != nil {
				stub.Close()
				return fmt.Errorf("lab: waiting for the resolver (%s): %w", t, err)
			}
			for _, a := range d.Addrs {
				addrs = append(addrs, net.JoinHostPort(a.String(), fmt.Sprint(d.Port)))
			}
		}
		stub.Close()
	}
	for _, a := range append(addrs, p.cfg.BaselineAddr) {
		if a == "" {
			continue
		}
		_, err := retryUntil(ctx, func() (struct{}, error) {
			conn, err := (&net.Dialer{Timeout: 2 * time.Second}).DialContext(ctx, "tcp", a)
			if err == nil {
				conn.Close()
			}
			return struct{}{}, err
		})
		if err != nil {
			return fmt.Errorf("lab: waiting for the server at %s: %w", a, err)
		}
	}
	p.prog.Phase("lab ready: resolver answers on %d transports, %d server addresses accept", len(p.cfg.DNS), len(addrs))
	return nil
}

// retryUntil calls fn every 500 ms until it succeeds or ctx ends, and
// returns the last error then.
func retryUntil[T any](ctx context.Context, fn func() (T, error)) (T, error) {
	for {
		v, err := fn()
		if err == nil {
			return v, nil
		}
		if sleepCtx(ctx, 500*time.Millisecond) != nil {
			return v, err
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
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
