package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/echlab/echlab/client"
	"github.com/echlab/echlab/resolver"
)

// staleRetry fetches the published config, waits until the resolver
// publishes another one (the server rotated and the resolver saw it),
// then connects with the old config until the server no longer accepts
// it: the server rejects it with retry configs and the client retries
// with them. Attempts while the old key is still in its grace period are
// counted in the note.
func (p *player) staleRetry(ctx context.Context, c Case, stub resolver.Client, keylog io.Writer) (*client.Result, error) {
	d, err := client.Discover(ctx, stub, p.cfg.SecretName, p.cfg.Port, false)
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
		nd, err := client.Discover(ctx, stub, p.cfg.SecretName, p.cfg.Port, false)
		if err == nil && len(nd.ConfigList) > 0 && !bytes.Equal(nd.ConfigList, stale) {
			break
		}
	}
	rotated := time.Since(t0)
	graceHits := 0
	for {
		o := p.options(c, stub, keylog)
		o.ConfigList = stale
		r, err := client.Fetch(ctx, p.url(c), o)
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
func (p *player) resolverDown(ctx context.Context, c Case, stub resolver.Client, keylog io.Writer) (*client.Result, error) {
	o := p.options(c, stub, keylog)
	r, err := client.Fetch(ctx, p.url(c), o)
	if err == nil || !c.scenario().playSpec().Fallback {
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
// back, as told (PlaySpec.Fallback).
func judgeDown(c Case, r *client.Result, err error) (Outcome, string) {
	var ce *client.Error
	if !c.scenario().playSpec().Fallback {
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
