package observe

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/lab/capture"
)

// countingReader counts the bytes read through it.
type countingReader struct {
	r *bytes.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// flowJSONWithoutID is a flow's JSON line with its ID cleared: what two
// numberings of the same flows share.
func flowJSONWithoutID(t *testing.T, f *Flow) string {
	t.Helper()
	g := *f
	g.ID = 0
	b, err := json.Marshal(&g)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestCompareStreaming: with OnFlow, each flow is handed over as soon as
// its connection closes (long before the capture's end), numbered in the
// order of the calls; the flows, the summary and the flow count are those
// of the whole report, and Report.Flows keeps only the first KeepFlows.
func TestCompareStreaming(t *testing.T) {
	data := bigCapture(t, 200) // 400 connections, each closed by both FINs
	whole, err := Compare(bytes.NewReader(data), CompareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	in := &countingReader{r: bytes.NewReader(data)}
	var got []*Flow
	firstAt := -1
	rep, err := Compare(in, CompareOptions{KeepFlows: 3, OnFlow: func(f *Flow) error {
		if firstAt < 0 {
			firstAt = in.n
		}
		if f.ID != len(got)+1 {
			t.Errorf("flow %d handed over as number %d", f.ID, len(got)+1)
		}
		got = append(got, f)
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if firstAt < 0 || firstAt > len(data)/4 {
		t.Errorf("the first flow came after %d of %d bytes; want it streamed as its connection closed", firstAt, len(data))
	}
	if len(got) != 400 || len(whole.Flows) != 400 || rep.TotalFlows != 400 || whole.TotalFlows != 400 {
		t.Fatalf("%d flows streamed, %d in the whole report; totals %d, %d", len(got), len(whole.Flows), rep.TotalFlows, whole.TotalFlows)
	}
	if len(rep.Flows) != 3 || rep.Flows[0] != got[0] || rep.Flows[2] != got[2] {
		t.Errorf("streamed report keeps %d flows, want the first 3", len(rep.Flows))
	}
	var a, b []string
	for i := range got {
		a, b = append(a, flowJSONWithoutID(t, got[i])), append(b, flowJSONWithoutID(t, whole.Flows[i]))
	}
	slices.Sort(a)
	slices.Sort(b)
	if !slices.Equal(a, b) {
		t.Error("the streamed flows differ from the whole report's")
	}
	if !reflect.DeepEqual(rep.Summary, whole.Summary) {
		t.Errorf("streamed summary %+v, want %+v", rep.Summary, whole.Summary)
	}
	var table bytes.Buffer
	if err := WriteTable(&table, rep); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "400 flows") || !strings.Contains(table.String(), "… and 397 more flows, not listed") {
		t.Errorf("streamed table:\n%s", table.String())
	}
}

// TestCompareStreamingStops: an OnFlow error stops the reading and is
// Compare's error.
func TestCompareStreamingStops(t *testing.T) {
	data := bigCapture(t, 50)
	stop := errors.New("disk full")
	in := &countingReader{r: bytes.NewReader(data)}
	calls := 0
	_, err := Compare(in, CompareOptions{OnFlow: func(*Flow) error { calls++; return stop }})
	if !errors.Is(err, stop) || calls != 1 || in.n > len(data)/2 {
		t.Fatalf("err %v after %d calls and %d of %d bytes; want the OnFlow error at once", err, calls, in.n, len(data))
	}
}

// liveHeapGrowth is how much the live heap (after a collection) grew
// between the start of Compare and the moment its 3900th flow was built.
func liveHeapGrowth(t *testing.T, data []byte, opts CompareOptions) uint64 {
	t.Helper()
	var before, at runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	opts.Built = func(n int) {
		if n == 3900 {
			runtime.GC()
			runtime.ReadMemStats(&at)
		}
	}
	if _, err := Compare(bytes.NewReader(data), opts); err != nil {
		t.Fatal(err)
	}
	return at.HeapAlloc - min(at.HeapAlloc, before.HeapAlloc)
}

// TestCompareStreamingBoundedHeap: streamed, a finished connection leaves
// only its key behind (a grave, ~0.3 KB here, at most maxGraves of them),
// while the whole report holds every flow (~1.3 KB each).
func TestCompareStreamingBoundedHeap(t *testing.T) {
	data := bigCapture(t, 2000) // 4000 connections, closed one after the other
	whole := liveHeapGrowth(t, data, CompareOptions{})
	streamed := liveHeapGrowth(t, data, CompareOptions{OnFlow: func(*Flow) error { return nil }})
	t.Logf("live heap growth after 3900 flows: %.2f MB whole, %.2f MB streamed", float64(whole)/1e6, float64(streamed)/1e6)
	if streamed > whole/3 {
		t.Errorf("streamed, the live heap grew by %d bytes after 3900 flows (whole report: %d); want a third at most", streamed, whole)
	}
}

// TestGravesBounded: the keys of finished connections are remembered (a
// late packet of one is ignored, not a new connection) up to a limit, so
// the table of connections does not grow with the capture.
func TestGravesBounded(t *testing.T) {
	data := bigCapture(t, 150) // 300 connections
	var lastACK *capture.Packet
	tab := &connTable{conns: map[connKey]*conn{}, graveLimit: 100}
	_, err := capture.Read(bytes.NewReader(data), func(p *capture.Packet) {
		tab.add(p)
		if p.Proto == 6 && len(p.Payload) == 0 && p.Flags == capture.TCPACK {
			q := *p
			lastACK = &q
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(tab.conns) > 100 || len(tab.order) != 300 {
		t.Fatalf("%d connections in the table (limit 100), %d in order", len(tab.conns), len(tab.order))
	}
	tab.add(lastACK) // a late ACK of the last connection: its grave is still there
	if len(tab.order) != 300 {
		t.Errorf("a late ACK of a finished connection began a new one")
	}
}

// TestOrderedStreamMatchesSort: for segments that follow one another (the
// fast path), stream gives what sorting and merging them gives, with kept
// and counted segments, past maxKept and past maxStream.
func TestOrderedStreamMatchesSort(t *testing.T) {
	for _, tc := range []struct {
		name     string
		syn, dns bool
		sizes    []int
	}{
		{"short", true, false, []int{517, 1200, 33}},
		{"no SYN", false, false, []int{100, 100}},
		{"past maxKept", true, false, []int{30000, 30000, 30000, 30000}},
		{"past maxStream", true, true, []int{60000, 60000, 60000, 60000, 60000, 60000, 60000, 60000, 60000, 60000, 60000, 60000, 60000, 60000, 60000, 60000, 60000, 60000}},
	} {
		h := &tcpHalf{notTLS: true, dns: tc.dns}
		seq := uint32(1000)
		if tc.syn {
			h.add(&capture.Packet{Flags: capture.TCPSYN, Seq: seq - 1})
		}
		for i, n := range tc.sizes {
			h.add(&capture.Packet{Flags: capture.TCPACK, Seq: seq, Payload: bytes.Repeat([]byte{byte(i + 1)}, n)})
			seq += uint32(n)
		}
		if !h.inOrder {
			t.Fatalf("%s: not in order", tc.name)
		}
		fast := h.stream()
		h.inOrder = false
		slow := h.stream()
		if !reflect.DeepEqual(fast.data, slow.data) || fast.length != slow.length || fast.start != slow.start || fast.gap != slow.gap ||
			fast.overlap != slow.overlap || fast.warning != slow.warning {
			t.Errorf("%s: fast path %d bytes kept of %d, slow %d of %d", tc.name, len(fast.data), fast.length, len(slow.data), slow.length)
		}
	}
	// A retransmission leaves the fast path.
	h := &tcpHalf{notTLS: true}
	h.add(&capture.Packet{Flags: capture.TCPSYN, Seq: 99})
	h.add(&capture.Packet{Flags: capture.TCPACK, Seq: 100, Payload: []byte("abcd")})
	h.add(&capture.Packet{Flags: capture.TCPACK, Seq: 100, Payload: []byte("abcd")})
	if s := h.stream(); h.inOrder || string(s.data) != "abcd" || s.overlap != 4 {
		t.Errorf("retransmission: in order %v, %q, overlap %d", h.inOrder, s.data, s.overlap)
	}
}

// FuzzHandshakeMsg: the copy-free reading of the first handshake message
// gives what ech.HandshakeFromRecords gives.
func FuzzHandshakeMsg(f *testing.F) {
	f.Add([]byte{22, 3, 1, 0, 8, 1, 0, 0, 4, 1, 2, 3, 4})
	f.Add([]byte{22, 3, 1, 0, 6, 1, 0, 0, 4, 1, 2, 22, 3, 1, 0, 2, 3, 4})
	f.Add([]byte{20, 3, 3, 0, 1, 1, 22, 3, 3, 0, 4, 2, 0, 0, 0})
	f.Add([]byte{22, 3, 3, 0, 3, 2, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		msg, n, err := handshakeMsg(b)
		wmsg, wn, werr := ech.HandshakeFromRecords(b)
		if !bytes.Equal(msg, wmsg) || n != wn || (err == nil) != (werr == nil) {
			t.Fatalf("handshakeMsg = %x, %d, %v; HandshakeFromRecords = %x, %d, %v", msg, n, err, wmsg, wn, werr)
		}
	})
}
