package capture

import (
	"slices"
	"time"
)

// settlePoll is how often Settle looks again.
const settlePoll = 2 * time.Millisecond

// Settle waits until the Filter has seen every TCP connection the relays
// have accepted, and no connection is queued to be accepted (on Linux,
// where a listener's accept queue can be read), at most timeout. It
// reports whether that happened. A caller that has stopped a client (its
// process has exited, so it will open no more connections) calls it
// before reading what its Filter logged, so that none of that client's
// connections is still on its way to the Filter and ends up counted with
// the next client's. A relay without a Filter is always settled.
//
// The state is read twice, settlePoll apart, since the moment between a
// listener's Accept returning and the relay counting the connection
// cannot be seen from outside.
func (o *Observer) Settle(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	calm := 0
	for {
		if o.settled() {
			if calm++; calm == 2 {
				return true
			}
		} else {
			calm = 0
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(settlePoll)
	}
}

// settled reports whether no accepted connection awaits the Filter and
// no connection waits to be accepted.
func (o *Observer) settled() bool {
	o.mu.Lock()
	lns := slices.Clone(o.tcpLns)
	o.mu.Unlock()
	for _, ln := range lns {
		if n, ok := acceptQueue(ln); ok && n > 0 {
			return false
		}
	}
	return o.unjudged.Load() == 0
}
