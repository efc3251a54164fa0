//go:build unix

package server

import (
	"syscall"
	"testing"
)

// BenchmarkSplitOneByteRecords measures one hostile connection (the
// largest ClientHello in one-byte records) against the split relay: wall
// time per connection, and the process's CPU time per connection
// (cpu-ns/op, relay and client together).
func BenchmarkSplitOneByteRecords(b *testing.B) {
	l := startSplitLab(b, false)
	hello := hostileHello(b)
	b.ResetTimer()
	cpu := cpuTime()
	benchHostile(b, l.split.Addr(), hello)
	b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
}

// cpuTime is the process's user and system CPU time in nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
