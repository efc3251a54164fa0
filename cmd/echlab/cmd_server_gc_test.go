package main

import (
	"runtime/debug"
	"testing"
)

// TestServerGC: echlab server and split collect at GOGC=400 unless the
// environment sets GOGC, which then wins.
func TestServerGC(t *testing.T) {
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)
	t.Setenv("GOGC", "")
	serverGC()
	if got := debug.SetGCPercent(100); got != 400 {
		t.Errorf("GOGC unset: GC percent %d, want 400", got)
	}
	t.Setenv("GOGC", "50")
	serverGC()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC=50 in the environment: GC percent changed to %d", got)
	}
}
