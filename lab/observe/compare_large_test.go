package observe

import (
	"bufio"
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/echlab/echlab/lab/capture"
)

// largeCapture writes to path a capture of pairs × 2 TLS connections (one
// ECH, one plain, recorded for real and replayed from distinct client
// ports), each followed by appBytes of application data records from the
// server, with batch connections open at a time (their data interleaved).
// It returns the file's size and the two recorded connections' flows.
func largeCapture(tb testing.TB, path string, pairs, appBytes, batch int) (int64, []*Flow) {
	tb.Helper()
	l := newLabTLS(tb)
	rec := capture.NewRecorder()
	addr := serveTLS(tb, rec, l.Server)
	dialTLS(tb, addr, l.Client("secret.lab.test", true, "h2"))
	dialTLS(tb, addr, l.Client("plain.lab.test", false, "h2"))
	conns, events := rec.Script()
	var small bytes.Buffer
	if err := capture.WriteScript(&small, conns, events); err != nil {
		tb.Fatal(err)
	}
	want, err := Compare(&small, CompareOptions{})
	if err != nil {
		tb.Fatal(err)
	}

	// One 16 KiB TLS application_data record, shared by every event.
	record := make([]byte, 16<<10)
	record[0], record[1], record[2] = 23, 3, 3
	record[3], record[4] = byte((len(record)-5)>>8), byte(len(record)-5)
	x := uint32(2463534242)
	for i := 5; i < len(record); i++ {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		record[i] = byte(x)
	}

	var bigConns []capture.ScriptConn
	var bigEvents []capture.ScriptEvent
	for first := 0; first < pairs; first += batch {
		var closes []capture.ScriptEvent
		var open []int
		for p := first; p < min(first+batch, pairs); p++ {
			base := len(bigConns)
			for _, c := range conns {
				c.Client = netip.AddrPortFrom(c.Client.Addr(), uint16(10000+len(bigConns)%50000))
				bigConns = append(bigConns, c)
				open = append(open, len(bigConns)-1)
			}
			clientClosed := map[int]bool{}
			for _, e := range events {
				e.Conn += base
				if e.Kind == capture.EventClose {
					closes = append(closes, e)
					clientClosed[e.Conn] = clientClosed[e.Conn] || e.FromClient
					continue
				}
				bigEvents = append(bigEvents, e)
			}
			// The recorder wraps the server's end, so the client's FIN may
			// be missing: close both ends, as real connections do.
			for c := base; c < len(bigConns); c++ {
				if !clientClosed[c] {
					closes = append(closes, capture.ScriptEvent{TS: events[len(events)-1].TS, Kind: capture.EventClose, Conn: c, FromClient: true})
				}
			}
		}
		last := bigEvents[len(bigEvents)-1].TS
		for sent := 0; sent < appBytes; sent += len(record) {
			for _, c := range open {
				bigEvents = append(bigEvents, capture.ScriptEvent{TS: last, Kind: capture.EventData, Conn: c, Data: record[:min(len(record), appBytes-sent)]})
			}
		}
		bigEvents = append(bigEvents, closes...)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if err := capture.WriteScript(w, bigConns, bigEvents); err != nil {
		tb.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	st, err := f.Stat()
	if err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	return st.Size(), want.Flows
}

// peakHeap samples runtime.MemStats.HeapInuse while fn runs and returns
// its peak growth over the heap in use (after a collection) before fn.
func peakHeap(fn func()) uint64 {
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var peak atomic.Uint64
	stop, done := make(chan struct{}), make(chan struct{})
	sample := func() {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		if m.HeapInuse > peak.Load() {
			peak.Store(m.HeapInuse)
		}
	}
	go func() {
		defer close(done)
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				sample()
			}
		}
	}()
	fn()
	sample()
	close(stop)
	<-done
	return peak.Load() - min(peak.Load(), before.HeapInuse)
}

// checkLargeReport checks that every flow of the large capture reads like
// the recorded connection it replays.
func checkLargeReport(tb testing.TB, rep *Report, want []*Flow, pairs int) {
	tb.Helper()
	if len(rep.Flows) != 2*pairs {
		tb.Fatalf("%d flows, want %d", len(rep.Flows), 2*pairs)
	}
	bySNI := map[string]*Flow{}
	for _, f := range want {
		bySNI[f.SNI] = f
	}
	for _, f := range rep.Flows {
		w := bySNI[f.SNI]
		if w == nil || f.ECH != w.ECH || f.JA4 != w.JA4 || f.ServerCipher != w.ServerCipher || f.ServerGroup != w.ServerGroup ||
			f.ClientHelloLen != w.ClientHelloLen || f.ClientRandom != w.ClientRandom || len(f.Warnings) != 0 {
			tb.Fatalf("flow %d = %+v, want it like %+v", f.ID, f, w)
		}
	}
}

// TestCompareLargeCaptureBoundedHeap compares a 55 MB capture of 400 TLS
// connections, each followed by 120 KiB of application data, 50
// connections at a time, and checks that the heap Compare adds stays far
// below the file's size (reading the whole file, as Compare once did, adds
// more than its size): the capture is read packet by packet and only each
// open connection's handshake is kept.
func TestCompareLargeCaptureBoundedHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 48 MB capture")
	}
	const pairs = 200
	path := filepath.Join(t.TempDir(), "large.pcapng")
	size, want := largeCapture(t, path, pairs, 120<<10, 25)
	var rep *Report
	peak := peakHeap(func() { rep = compareFile(t, path, CompareOptions{}) })
	checkLargeReport(t, rep, want, pairs)
	t.Logf("capture %.1f MB, %d flows: peak heap growth %.1f MB", float64(size)/1e6, len(rep.Flows), float64(peak)/1e6)
	if limit := uint64(size / 4); peak > limit {
		t.Fatalf("peak heap growth %.1f MB while comparing a %.1f MB capture; want under %.1f MB", float64(peak)/1e6, float64(size)/1e6, float64(limit)/1e6)
	}
}

// BenchmarkCompareLarge compares a ~100 MB capture (1000 TLS connections,
// 100 KiB of application data each, 100 at a time) and reports the peak
// growth of the heap in use beside the throughput. ECHLAB_BENCH_PAIRS and
// ECHLAB_BENCH_APPDATA (bytes per connection) change its shape.
func BenchmarkCompareLarge(b *testing.B) {
	pairs, app := envInt(b, "ECHLAB_BENCH_PAIRS", 500), envInt(b, "ECHLAB_BENCH_APPDATA", 100<<10)
	path := filepath.Join(b.TempDir(), "large.pcapng")
	size, want := largeCapture(b, path, pairs, app, 50)
	b.SetBytes(size)
	b.ResetTimer()
	var peak uint64
	for i := 0; i < b.N; i++ {
		var rep *Report
		peak = max(peak, peakHeap(func() { rep = compareFile(b, path, CompareOptions{}) }))
		checkLargeReport(b, rep, want, pairs)
	}
	b.ReportMetric(float64(size)/1e6, "file-MB")
	b.ReportMetric(float64(peak)/1e6, "peak-heap-growth-MB")
}

func envInt(tb testing.TB, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	return n
}
