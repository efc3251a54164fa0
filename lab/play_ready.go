package lab

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/echlab/echlab/client"
)

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
