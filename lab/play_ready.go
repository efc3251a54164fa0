package lab

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/echlab/echlab/client"
	"github.com/echlab/echlab/lab/observe"
)

// waitReady waits until every resolver URL answers the HTTPS query of
// the secret name with an ech value and every server accepts TCP. rec
// keeps the randoms and DNS ids of its queries, and the client ports of
// its TCP probes, which join those flows to PlayReadyCheck.
func (p *player) waitReady(ctx context.Context, rec *readyRecord) error {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.ReadyTimeout)
	defer cancel()
	var addrs []string
	for _, t := range AllTransports {
		if p.cfg.DNS[t] == "" {
			continue
		}
		stub, err := p.stub(t, rec)
		if err != nil {
			return err
		}
		if t == DNSDo53 {
			stub = idStub{Client: stub, rec: rec.caseRecord}
		}
		for _, name := range []string{p.cfg.SecretName, p.cfg.SplitName} {
			d, err := retryUntil(ctx, func() (*client.Discovery, error) {
				d, err := client.Discover(ctx, stub, name, p.cfg.Port, true)
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
				rec.addPort(conn.LocalAddr())
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

// readyRecord is what the wait for the lab sent: a caseRecord (randoms,
// DNS ids) and the client ports of its bare TCP probes, which carry no
// ClientHello.
type readyRecord struct {
	*caseRecord
	mu    sync.Mutex
	ports []uint16
}

func (r *readyRecord) addPort(a net.Addr) {
	if ta, ok := a.(*net.TCPAddr); ok {
		r.mu.Lock()
		r.ports = append(r.ports, uint16(ta.Port))
		r.mu.Unlock()
	}
}

// rules are the scenario-map lines that join the wait's flows: by random,
// by DNS id within its window, by TCP client port, and its window last.
func (r *readyRecord) rules(start, end time.Time) []observe.ScenarioRule {
	var cr CaseResult
	r.fill(&cr)
	var out []observe.ScenarioRule
	if len(cr.ClientRandoms) > 0 {
		out = append(out, observe.ScenarioRule{ClientRandoms: cr.ClientRandoms})
	}
	if len(cr.DNSIDs) > 0 {
		out = append(out, observe.ScenarioRule{DNSIDs: cr.DNSIDs, Start: start, End: end})
	}
	r.mu.Lock()
	// No window on the probes' ports: a relay's synthesized capture can
	// stamp the last probe after the first case began, and a later flow
	// reaches this rule only when it has no random or DNS id of its own.
	for _, p := range r.ports {
		out = append(out, observe.ScenarioRule{Proto: observe.ProtoTCP, ClientPort: p})
	}
	r.mu.Unlock()
	out = append(out, observe.ScenarioRule{Start: start, End: end})
	for i := range out {
		out[i].Scenario = PlayReadyCheck
	}
	return out
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
