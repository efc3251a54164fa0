package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCompareProgressLine feeds the progress line fake counts and a fake
// clock: nothing before progressEvery has passed, then one line with the
// bytes, the share, the flows and the rate, redrawn in place, and cleared
// by done.
func TestCompareProgressLine(t *testing.T) {
	var out bytes.Buffer
	now := time.Unix(1700000000, 0)
	p := newProgressTo(&out, 1_000_000_000, func() time.Time { return now })
	r := p.reader(bytes.NewReader(make([]byte, 100_000_000)))
	buf := make([]byte, 50_000_000)
	r.Read(buf)
	p.built(1024)
	if out.Len() != 0 {
		t.Fatalf("a line before %v passed: %q", progressEvery, out.String())
	}
	now = now.Add(time.Second)
	r.Read(buf)
	p.built(1500)
	want := "\rcompare: 100.0 MB of 1.00 GB (10%), 1024 flows, 100.0 MB/s"
	if out.String() != want {
		t.Fatalf("progress line %q, want %q", out.String(), want)
	}
	now = now.Add(time.Second)
	p.built(2048)
	line2 := "compare: 100.0 MB of 1.00 GB (10%), 2048 flows, 50.0 MB/s"
	// One rune shorter than the first: a space covers the old one's end.
	if got := strings.TrimPrefix(out.String(), want); got != "\r"+line2+" " {
		t.Fatalf("second line %q, want %q", got, "\r"+line2+" ")
	}
	out.Reset()
	p.done()
	if out.String() != "\r"+strings.Repeat(" ", len(line2))+"\r" {
		t.Errorf("done wrote %q, want the line cleared", out.String())
	}
	out.Reset()
	p.done()
	if out.Len() != 0 {
		t.Errorf("a second done wrote %q", out.String())
	}
	var none *progress
	none.done() // no progress (not a terminal): nothing to clear
}

// TestCompareProgressNotTerminal: on a pipe or a file, however large the
// capture, there is no progress line (tests and CI see nothing).
func TestCompareProgressNotTerminal(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, out := range []*os.File{w, f} {
		if p := newProgress(out, 10<<30); p != nil {
			t.Errorf("progress on %s", out.Name())
		}
	}
}
