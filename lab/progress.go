package lab

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// Outcome is how one case ended.
type Outcome string

// Outcomes of a case.
const (
	OutcomeOK      Outcome = "ok"      // ran and did what the scenario expects
	OutcomeFailed  Outcome = "failed"  // ran and did not: the run exits non-zero
	OutcomeSkipped Outcome = "skipped" // could not run here; Detail says why
)

// Progress prints one line per finished case ("✓ ech-shared/doh #1  12.3 ms
// accepted") and phase messages. A nil *Progress or a nil writer prints
// nothing (--quiet).
type Progress struct {
	W     io.Writer
	Total int // cases planned, for the [i/N] counter

	mu   sync.Mutex
	done int
}

// Phase prints a phase message ("starting the lab stack").
func (p *Progress) Phase(format string, args ...any) {
	if p == nil || p.W == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.W, "· "+format+"\n", args...)
}

// Case prints the line of a finished case.
func (p *Progress) Case(c Case, o Outcome, elapsed time.Duration, detail string) {
	if p == nil || p.W == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done++
	mark := map[Outcome]string{OutcomeOK: "✓", OutcomeFailed: "✗", OutcomeSkipped: "-"}[o]
	width := len(fmt.Sprint(p.Total))
	fmt.Fprintf(p.W, "%s [%*d/%d] %-36s %8.1f ms  %s\n", mark, width, p.done, p.Total, c.Label(),
		float64(elapsed)/float64(time.Millisecond), detail)
}
