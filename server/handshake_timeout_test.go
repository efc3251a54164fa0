package server

import (
	"context"
	"io"
	"net"
	"testing"
	"time"
)

// TestHandshakeTimeoutLogged: a client that stops halfway through its
// ClientHello is cut off after HandshakeTimeout, and the log says why in
// the words it always used.
func TestHandshakeTimeoutLogged(t *testing.T) {
	var logBuf syncBuffer
	s := startServer(t, Config{HandshakeTimeout: 300 * time.Millisecond, Log: &logBuf})
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte{22, 3, 1}) //nolint:errcheck // a partial record header, then silence
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("server did not close the stalled connection: %v", err)
	}
	recs := logBuf.waitRecords(t, 1)
	if len(recs) != 1 || recs[0].Error != context.DeadlineExceeded.Error() {
		t.Fatalf("log = %+v, want one record with error %q", recs, context.DeadlineExceeded)
	}
}
