package relay

import (
	"io"
	"runtime"
	"testing"
	"time"
)

// exchange relays one small request and answer the way a split front
// relays a TLS handshake, then both ends close, and waits for Pipe.
func exchange(t testing.TB) {
	client, server, done := relayed(t, time.Minute)
	msg := make([]byte, 1500)
	if _, err := client.Write(msg); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(server, msg); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Write(msg[:500]); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(client, msg[:500]); err != nil {
		t.Fatal(err)
	}
	client.Close()
	server.Close()
	<-done
}

// TestPipeReusesBuffers: relaying a short connection must not allocate a
// fresh pair of 32 KiB copy buffers each time (64 KiB of garbage per
// relayed handshake made the split front's collector run all the time).
// The pool may drop buffers (the race detector drops some on purpose), so
// the bound is an average well under one buffer.
func TestPipeReusesBuffers(t *testing.T) {
	exchange(t) // fill the pool
	const n = 40
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		exchange(t)
	}
	runtime.ReadMemStats(&after)
	perPipe := (after.TotalAlloc - before.TotalAlloc) / n
	if perPipe >= bufSize {
		t.Fatalf("%d bytes allocated per relayed connection, want under %d", perPipe, bufSize)
	}
	t.Logf("%d bytes allocated per relayed connection (sockets included)", perPipe)
}

// BenchmarkPipe relays one short exchange per iteration over loopback
// (the two TCP connections' setup included).
func BenchmarkPipe(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		exchange(b)
	}
}
