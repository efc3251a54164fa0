package observe

import (
	"bytes"
	"net/netip"
	"os"
	"strconv"
	"testing"

	"github.com/echlab/echlab/lab/capture"
)

// bigCapture records one ECH and one plain TLS connection for real, then
// replays their events as n connections from distinct client ports: a large
// capture of realistic ClientHellos without n real handshakes.
func bigCapture(tb testing.TB, n int) []byte {
	tb.Helper()
	l := newLabTLS(tb)
	rec := capture.NewRecorder()
	addr := serveTLS(tb, rec, l.Server)
	dialTLS(tb, addr, l.Client("secret.lab.test", true, "h2"))
	dialTLS(tb, addr, l.Client("plain.lab.test", false, "h2"))
	conns, events := rec.Script()
	// The recorder wraps the server's end, so the client's FIN is missing,
	// and the server's may not be recorded yet when Script runs (its relay
	// records it after dialTLS returns): close both ends, as real
	// connections (and tcpdump's captures of them) do.
	closed := map[[2]int]bool{} // conn, from client (1) or server (0)
	for _, e := range events {
		if e.Kind == capture.EventClose {
			closed[[2]int{e.Conn, map[bool]int{true: 1}[e.FromClient]}] = true
		}
	}
	ts := events[len(events)-1].TS
	for c := range conns {
		for _, fromClient := range []bool{false, true} {
			if !closed[[2]int{c, map[bool]int{true: 1}[fromClient]}] {
				events = append(events, capture.ScriptEvent{TS: ts, Kind: capture.EventClose, Conn: c, FromClient: fromClient})
			}
		}
	}
	var bigConns []capture.ScriptConn
	var bigEvents []capture.ScriptEvent
	for i := 0; i < n; i++ {
		base := len(bigConns)
		for _, c := range conns {
			port := uint16(32768 + len(bigConns)%28000)
			if port >= c.Server.Port() {
				port++ // a client port equal to the server's would merge both directions
			}
			c.Client = netip.AddrPortFrom(c.Client.Addr(), port)
			bigConns = append(bigConns, c)
		}
		for _, e := range events {
			e.Conn += base
			bigEvents = append(bigEvents, e)
		}
	}
	var buf bytes.Buffer
	if err := capture.WriteScript(&buf, bigConns, bigEvents); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkCompare measures Compare on a capture of 2000 TLS connections
// (half with ECH); the ClientHellos/s metric is the headline figure.
func BenchmarkCompare(b *testing.B) {
	data := bigCapture(b, 1000)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	var hellos int
	for i := 0; i < b.N; i++ {
		rep, err := Compare(bytes.NewReader(data), CompareOptions{})
		if err != nil {
			b.Fatal(err)
		}
		hellos = len(rep.Flows)
	}
	b.ReportMetric(float64(hellos*b.N)/b.Elapsed().Seconds(), "ClientHellos/s")
}

// TestWriteBenchCapture writes the large capture for bench/compare.sh when
// ECHLAB_BENCH_CAPTURE names a file (ECHLAB_BENCH_PAIRS connection pairs,
// default 10000; with ECHLAB_BENCH_APPDATA, that many bytes of application
// data follow each handshake, 50 pairs at a time: see largeCapture).
func TestWriteBenchCapture(t *testing.T) {
	path := os.Getenv("ECHLAB_BENCH_CAPTURE")
	if path == "" {
		t.Skip("set ECHLAB_BENCH_CAPTURE=FILE to write the benchmark capture")
	}
	n := 10000
	if s := os.Getenv("ECHLAB_BENCH_PAIRS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			t.Fatal(err)
		}
	}
	if app := envInt(t, "ECHLAB_BENCH_APPDATA", 0); app > 0 {
		largeCapture(t, path, n, app, 50)
		return
	}
	if err := os.WriteFile(path, bigCapture(t, n), 0o644); err != nil {
		t.Fatal(err)
	}
}
