package interop

import (
	"bytes"
	"encoding/json"
	"io"
	"sync"
	"time"

	"github.com/echlab/echlab/resolver"
	"github.com/echlab/echlab/server"
)

// JSONLog receives a JSON-lines log (the server's connection log, the
// resolver's query log): it writes every line to a file and keeps the
// parsed records, so that each case can take the records of its own time
// window. Lines that do not parse are kept in the file only.
type JSONLog[T any] struct {
	mu      sync.Mutex
	w       io.WriteCloser
	partial []byte
	recs    []T
	changed chan struct{} // closed (and dropped) when records arrive; nil until waited on
}

// ConnLog is the server's connection log.
type ConnLog = JSONLog[server.ConnRecord]

// QueryLog is the resolver's query log.
type QueryLog = JSONLog[resolver.QueryLogEntry]

func newJSONLog[T any](w io.WriteCloser) *JSONLog[T] { return &JSONLog[T]{w: w} }

func newConnLog(w io.WriteCloser) *ConnLog { return newJSONLog[server.ConnRecord](w) }

// Write copies b to the file and parses the complete lines in it.
func (c *JSONLog[T]) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.partial = append(c.partial, b...)
	for {
		i := bytes.IndexByte(c.partial, '\n')
		if i < 0 {
			break
		}
		var r T
		if json.Unmarshal(c.partial[:i], &r) == nil {
			c.recs = append(c.recs, r)
			if c.changed != nil {
				close(c.changed)
				c.changed = nil
			}
		}
		c.partial = c.partial[i+1:]
	}
	return c.w.Write(b)
}

// Mark returns the number of records so far: the start of a window.
func (c *JSONLog[T]) Mark() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.recs)
}

// Since returns a copy of the records from mark on.
func (c *JSONLog[T]) Since(mark int) []T {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]T(nil), c.recs[mark:]...)
}

// waitFor waits until ok holds for the records from mark on, checking
// again each time a record arrives (no polling), for at most timeout, and
// reports whether it held.
func (c *JSONLog[T]) waitFor(mark int, timeout time.Duration, ok func([]T) bool) bool {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		c.mu.Lock()
		held := ok(c.recs[mark:])
		if c.changed == nil {
			c.changed = make(chan struct{})
		}
		changed := c.changed
		c.mu.Unlock()
		if held {
			return true
		}
		select {
		case <-changed:
		case <-t.C:
			return false
		}
	}
}

// Close closes the file.
func (c *JSONLog[T]) Close() error { return c.w.Close() }
