package interop

import (
	"bytes"
	"encoding/json"
	"io"
	"sync"

	"github.com/echlab/echlab/server"
)

// ConnLog receives the server's JSON connection log: it writes every line
// to a file and keeps the parsed records, so that each case can take the
// records of its own time window.
type ConnLog struct {
	mu      sync.Mutex
	w       io.WriteCloser
	partial []byte
	recs    []server.ConnRecord
}

func newConnLog(w io.WriteCloser) *ConnLog { return &ConnLog{w: w} }

// Write copies b to the file and parses the complete lines in it.
func (c *ConnLog) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.partial = append(c.partial, b...)
	for {
		i := bytes.IndexByte(c.partial, '\n')
		if i < 0 {
			break
		}
		var r server.ConnRecord
		if json.Unmarshal(c.partial[:i], &r) == nil {
			c.recs = append(c.recs, r)
		}
		c.partial = c.partial[i+1:]
	}
	return c.w.Write(b)
}

// Mark returns the number of records so far: the start of a window.
func (c *ConnLog) Mark() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.recs)
}

// Since returns a copy of the records from mark on.
func (c *ConnLog) Since(mark int) []server.ConnRecord {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]server.ConnRecord(nil), c.recs[mark:]...)
}

// Close closes the file.
func (c *ConnLog) Close() error { return c.w.Close() }
