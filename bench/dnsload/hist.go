package main

import (
	"math/bits"
	"time"
)

// hist is a latency histogram with about 6% resolution: the bucket of a
// duration is its power of two in nanoseconds and the next 4 bits below
// it. It has a fixed size whatever the run's length.
type hist struct {
	n      int64
	counts [64 * 16]int64
	max    time.Duration
}

func bucket(d time.Duration) int {
	v := uint64(max(d, 1))
	e := bits.Len64(v) - 1 // v in [2^e, 2^(e+1))
	if e < 4 {
		return int(v) // exact below 16 ns
	}
	return e*16 + int(v>>(e-4))&15
}

// lower is the smallest duration in bucket b.
func lower(b int) time.Duration {
	e, m := b/16, b%16
	if e < 4 {
		return time.Duration(b)
	}
	return time.Duration((16 + uint64(m)) << (e - 4))
}

func (h *hist) add(d time.Duration) {
	h.n++
	h.counts[bucket(d)]++
	h.max = max(h.max, d)
}

func (h *hist) merge(o *hist) {
	h.n += o.n
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.max = max(h.max, o.max)
}

// quantile returns the lower bound of the bucket holding the q-th
// quantile (0 < q < 1), or 0 when empty.
func (h *hist) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := int64(q*float64(h.n-1)) + 1
	var seen int64
	for b, c := range h.counts {
		if seen += c; seen >= rank {
			return lower(b)
		}
	}
	return h.max
}
