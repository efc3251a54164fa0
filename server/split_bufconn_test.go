package server

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// ioCountConn keeps what the first read of a connection returned and
// what was written to it, write by write.
type ioCountConn struct {
	net.Conn
	mu     sync.Mutex
	first  []byte // what the first Read returned
	reads  int
	writes [][]byte
}

func (c *ioCountConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.mu.Lock()
	if c.reads == 0 {
		c.first = append([]byte(nil), b[:n]...)
	}
	c.reads++
	c.mu.Unlock()
	return n, err
}

func (c *ioCountConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	c.writes = append(c.writes, append([]byte(nil), b...))
	c.mu.Unlock()
	return c.Conn.Write(b)
}

// CloseWrite half-closes the connection, as the relay expects of a TCP
// conn.
func (c *ioCountConn) CloseWrite() error { return c.Conn.(*net.TCPConn).CloseWrite() }

// recordTypes lists the content types of the TLS records in b.
func recordTypes(b []byte) []byte {
	var out []byte
	for len(b) >= recordHeaderLen {
		n := recordHeaderLen + (int(b[3])<<8 | int(b[4]))
		if n > len(b) {
			break
		}
		out = append(out, b[0])
		b = b[n:]
	}
	return out
}

// TestSplitReadsFlightsWhole: the relay reads the client's ClientHello
// record in one read of the socket (not a header and then a body), and writes
// the backend's whole first flight to the client at once: the ServerHello
// and the encrypted records after it in the same write.
func TestSplitReadsFlightsWhole(t *testing.T) {
	l := startSplitLab(t, false)
	near, far := loopbackPair(t)
	cc := &ioCountConn{Conn: far}
	done := make(chan struct{})
	go func() { defer close(done); l.split.serve(cc) }()
	tc := tls.Client(near, clientTLS(t, "secret.lab.test", configList(t, l.key)))
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	if !tc.ConnectionState().ECHAccepted {
		t.Fatal("ECH not accepted")
	}
	cc.mu.Lock()
	first, writes := cc.first, cc.writes
	cc.mu.Unlock()
	tc.Close()
	<-done
	if types := recordTypes(first); len(types) != 1 || types[0] != recordHandshake {
		t.Errorf("first read of the client's socket returned %d bytes, records %v: want the whole ClientHello record", len(first), types)
	}
	if len(writes) == 0 {
		t.Fatal("nothing written to the client")
	}
	types := recordTypes(writes[0])
	if len(types) < 3 || types[0] != recordHandshake {
		t.Errorf("first write to the client holds records of types %v, want the ServerHello and the flight after it", types)
	}
}

// TestSplitForwardsBytesAfterHello: bytes a client sends right behind its
// ClientHello, read with it into the relay's buffer, reach the backend
// after the ClientHello and before anything relayed later, in order.
func TestSplitForwardsBytesAfterHello(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	sp, err := StartSplit(SplitConfig{CA: testCA(t), Routes: Routes{"*": ln.Addr().String()}})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	hello := clientHelloRecords(t, clientTLS(t, "plain.lab.test", nil))
	c, err := net.Dial("tcp", sp.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	want := append(append(append([]byte(nil), hello...), "behind the hello"...), " and later"...)
	if _, err := c.Write(want[:len(want)-len(" and later")]); err != nil {
		t.Fatal(err)
	}
	b, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, len(want))
	if _, err := io.ReadFull(b, got[:len(want)-len(" and later")]); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte(" and later")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(b, got[len(want)-len(" and later"):]); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("backend got %q\nwant %q", got, want)
	}
}
