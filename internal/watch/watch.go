// Package watch polls files for changes. The resolver's publisher and the
// ECH servers use it to follow a key-set directory rotated by another
// process: they watch the manifest that ech.SaveKeySet writes last, and a
// set caught half-written or broken is retried at the next poll while the
// last good one stays in use.
package watch

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"
)

// DefaultInterval is how often File polls when given no interval.
const DefaultInterval = 500 * time.Millisecond

// File polls path every interval (DefaultInterval if zero or negative)
// until ctx ends, and calls reload when the file's Stamp changed since the
// last successful reload. The first tick always reloads, because a change
// may have come between the caller's own first load and the watch. A
// reload that fails is tried again at the next tick, even if the file has
// not changed since.
func File(ctx context.Context, path string, interval time.Duration, reload func() error) {
	if interval <= 0 {
		interval = DefaultInterval
	}
	last := ""
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		stamp := Stamp(path)
		if stamp == last {
			continue
		}
		if reload() == nil {
			last = stamp
		}
	}
}

// Stamp summarises a file's size, modification time and contents, so that
// any rewrite shows, even one within the file system's time resolution.
// All three come from one open file: a file replaced by rename between a
// stat of the path and a read of it would give a stamp that is neither
// the old file's nor the new one's, and so a second reload of the new
// one. A missing or unreadable file has a fixed stamp of its own.
func Stamp(path string) string {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "missing"
	}
	if err != nil {
		return "unreadable"
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "unreadable"
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return "unreadable"
	}
	sum := sha256.Sum256(b)
	return fmt.Sprintf("%d/%d/%x", fi.Size(), fi.ModTime().UnixNano(), sum)
}
