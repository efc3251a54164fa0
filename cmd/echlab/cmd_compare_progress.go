package main

import (
	"fmt"
	"io"
	"os"
	"time"
)

// progressMin is the capture size from which echlab compare shows its
// progress on a terminal.
const progressMin = 50 << 20

// progressEvery is the least time between two progress lines.
const progressEvery = 250 * time.Millisecond

// progress is the line echlab compare keeps up to date on a terminal
// while it reads a large capture: bytes read of the total, flows built so
// far, read rate. It is redrawn in place (carriage return) at most every
// progressEvery, and cleared at the end.
type progress struct {
	w         io.Writer
	total     int64
	read      int64
	flows     int
	start     time.Time
	last      time.Time
	now       func() time.Time
	shown     bool
	lastWidth int
}

// newProgress returns the progress line for a capture of size bytes on
// stderr, or nil when stderr is not a terminal (tests, CI, a redirect) or
// the capture is small.
func newProgress(stderr *os.File, size int64) *progress {
	if size < progressMin || !isTerminal(stderr) {
		return nil
	}
	return newProgressTo(stderr, size, time.Now)
}

func newProgressTo(w io.Writer, size int64, now func() time.Time) *progress {
	t := now()
	return &progress{w: w, total: size, start: t, last: t, now: now}
}

// reader counts the bytes read through it.
func (p *progress) reader(r io.Reader) io.Reader { return &progressReader{r: r, p: p} }

type progressReader struct {
	r io.Reader
	p *progress
}

func (r *progressReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	r.p.read += int64(n)
	r.p.tick()
	return n, err
}

// built notes the number of flows built so far (CompareOptions.Built).
func (p *progress) built(n int) {
	p.flows = n
	if n%1024 == 0 {
		p.tick()
	}
}

// tick redraws the line if progressEvery has passed since the last time.
func (p *progress) tick() {
	t := p.now()
	if t.Sub(p.last) < progressEvery {
		return
	}
	p.last = t
	line := p.line(t)
	pad := max(p.lastWidth-len(line), 0)
	p.lastWidth = len(line)
	fmt.Fprintf(p.w, "\r%s%*s", line, pad, "")
	p.shown = true
}

// line is the text of the progress line at time t.
func (p *progress) line(t time.Time) string {
	pct := 0.0
	if p.total > 0 {
		pct = 100 * float64(p.read) / float64(p.total)
	}
	rate := 0.0
	if d := t.Sub(p.start).Seconds(); d > 0 {
		rate = float64(p.read) / d
	}
	return fmt.Sprintf("compare: %s of %s (%.0f%%), %d flows, %s/s", siBytes(p.read), siBytes(p.total), pct, p.flows, siBytes(int64(rate)))
}

// done clears the line, if one was drawn.
func (p *progress) done() {
	if p != nil && p.shown {
		fmt.Fprintf(p.w, "\r%*s\r", p.lastWidth, "")
		p.shown = false
	}
}

// siBytes writes a byte count in MB or GB (decimal units), as du -h --si.
func siBytes(n int64) string {
	if n >= 1e9 {
		return fmt.Sprintf("%.2f GB", float64(n)/1e9)
	}
	return fmt.Sprintf("%.1f MB", float64(n)/1e6)
}
