package server

import (
	"bufio"
	"net"
	"sync"
)

// helloReadSize is the buffer the split relay reads a ClientHello or a
// backend's first flight into: one read takes the whole flight where a
// record-by-record read of the bare socket takes two per record.
const helloReadSize = 16 << 10

// readers holds the relay's read buffers between connections.
var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, helloReadSize) }}

// getReader returns a pooled buffered reader over c.
func getReader(c net.Conn) *bufio.Reader {
	r := readers.Get().(*bufio.Reader)
	r.Reset(c)
	return r
}

// putReader returns r to the pool; what it still buffers is dropped.
func putReader(r *bufio.Reader) {
	r.Reset(nil)
	readers.Put(r)
}

// buffered returns a copy of the bytes r has read ahead.
func buffered(r *bufio.Reader) []byte {
	if r.Buffered() == 0 {
		return nil
	}
	b, _ := r.Peek(r.Buffered())
	return append([]byte(nil), b...)
}

// bufConn is the client's connection while the relay reads its
// ClientHello(s): reads go through a pooled buffer, everything else to
// the connection. What the buffer read ahead is handed on with rest.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func newBufConn(c net.Conn) *bufConn { return &bufConn{Conn: c, r: getReader(c)} }

// Read reads through the buffer.
func (b *bufConn) Read(p []byte) (int, error) { return b.r.Read(p) }

// rest returns (and consumes) the bytes read ahead of what the relay
// parsed.
func (b *bufConn) rest() []byte {
	out := buffered(b.r)
	b.r.Discard(len(out)) //nolint:errcheck // they are buffered
	return out
}

// release returns the buffer; the bufConn is not read after.
func (b *bufConn) release() { putReader(b.r) }
