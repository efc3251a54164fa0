package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Result is what a run measured. Only exchanges that ended within the
// run's duration count.
type Result struct {
	Answered int64 // responses that passed the check
	Errors   int64 // failed exchanges and wrong answers
	Duration time.Duration
	Latency  hist           // of the answered queries
	Reasons  map[string]int // error text → count
	// ClientCPU is the CPU this process (the load generator) used during
	// the run: when it is about Duration, the generator's core was the limit.
	ClientCPU time.Duration
}

// Rate is answered queries per second.
func (r *Result) Rate() float64 { return float64(r.Answered) / r.Duration.Seconds() }

// TopReasons returns up to n error texts with their counts, most frequent
// first (ties by text, so the order is stable).
func (r *Result) TopReasons(n int) []string {
	type rc struct {
		text  string
		count int
	}
	var all []rc
	for t, c := range r.Reasons {
		all = append(all, rc{t, c})
	}
	slices.SortFunc(all, func(a, b rc) int {
		return cmp.Or(cmp.Compare(b.count, a.count), cmp.Compare(a.text, b.text))
	})
	var out []string
	for _, e := range all[:min(n, len(all))] {
		out = append(out, fmt.Sprintf("%d × %s", e.count, e.text))
	}
	return out
}

// Run opens cfg.Conns connections (handshakes done before the clock
// starts), then runs cfg.InFlight workers on each, every worker sending
// the mix's queries one after another (each starting at its own offset of
// the mix) and checking every answer, for cfg.Duration.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.populate(); err != nil {
		return nil, err
	}
	items, err := newItems(cfg.Mix)
	if err != nil {
		return nil, err
	}
	for i := range items {
		items[i].url = dohURL(&cfg, items[i].wire)
	}
	conns := make([]conn, 0, cfg.Conns)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range cfg.Conns {
		c, err := dial(ctx, &cfg, items)
		if err != nil {
			return nil, err
		}
		conns = append(conns, c)
	}
	return measure(ctx, &cfg, items, conns), nil
}

// worker is one in-flight slot's tally.
type worker struct {
	answered, errors int64
	lat              hist
	reasons          map[string]int
}

func measure(ctx context.Context, cfg *Config, items []item, conns []conn) *Result {
	cpu0 := processCPU()
	start := time.Now()
	end := start.Add(cfg.Duration)
	workers := make([]worker, len(conns)*cfg.InFlight)
	var wg sync.WaitGroup
	for ci, c := range conns {
		for slot := range cfg.InFlight {
			w := &workers[ci*cfg.InFlight+slot]
			wg.Go(func() { w.loop(ctx, cfg, items, c, slot, ci+slot, end) })
		}
	}
	wg.Wait()
	r := &Result{Duration: cfg.Duration, Reasons: map[string]int{}, ClientCPU: processCPU() - cpu0}
	for i := range workers {
		w := &workers[i]
		r.Answered += w.answered
		r.Errors += w.errors
		r.Latency.merge(&w.lat)
		for t, n := range w.reasons {
			r.Reasons[t] += n
		}
	}
	return r
}

func (w *worker) loop(ctx context.Context, cfg *Config, items []item, c conn, slot, offset int, end time.Time) {
	var buf []byte
	for i := offset % len(items); ctx.Err() == nil; i = (i + 1) % len(items) {
		t0 := time.Now()
		if !t0.Before(end) {
			return
		}
		it := &items[i]
		qctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
		resp, err := c.exchange(qctx, it, slot, &buf)
		cancel()
		if err == nil {
			err = it.check(resp, c.id(slot))
		}
		t1 := time.Now()
		if t1.After(end) {
			return
		}
		if err != nil {
			w.fail(err)
			continue
		}
		w.answered++
		w.lat.add(t1.Sub(t0))
	}
}

func (w *worker) fail(err error) {
	w.errors++
	if w.reasons == nil {
		w.reasons = map[string]int{}
	}
	text := err.Error()
	var ae *AnswerError
	if !errors.As(err, &ae) && len(text) > 200 {
		text = text[:200]
	}
	if _, seen := w.reasons[text]; !seen && len(w.reasons) >= 50 {
		text = "(other errors)"
	}
	w.reasons[text]++
}
