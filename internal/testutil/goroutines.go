package testutil

import (
	"bytes"
	"runtime/pprof"
	"strings"
)

// Goroutines returns the stack of every live goroutine, keyed by its
// "goroutine N" header, from the goroutine profile.
func Goroutines() map[string]string {
	var b bytes.Buffer
	pprof.Lookup("goroutine").WriteTo(&b, 2) //nolint:errcheck // a bytes.Buffer does not fail
	out := map[string]string{}
	for _, g := range strings.Split(b.String(), "\n\n") {
		head, _, _ := strings.Cut(g, " [")
		if strings.HasPrefix(head, "goroutine ") {
			out[head] = g
		}
	}
	return out
}

// NewGoroutines returns the stacks of the goroutines live now that were
// not in before (a Goroutines snapshot) and whose stack contains one of
// match, e.g. "resolver.(*DoQServer).serveStream". A server's Close that
// waits for its goroutines leaves none right after it returns.
func NewGoroutines(before map[string]string, match ...string) []string {
	var left []string
	for id, stack := range Goroutines() {
		if _, ok := before[id]; ok {
			continue
		}
		for _, m := range match {
			if strings.Contains(stack, m) {
				left = append(left, stack)
				break
			}
		}
	}
	return left
}
