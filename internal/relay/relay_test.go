package relay

import (
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"testing"
	"time"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t testing.TB) (near, far net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	near, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	far = <-accepted
	if far == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { near.Close(); far.Close() })
	return near, far
}

// relayed starts Pipe between two loopback connections and returns the
// client's and the server's ends, and a channel closed when Pipe returns.
func relayed(t testing.TB, idle time.Duration) (client, server net.Conn, done chan struct{}) {
	client, a := tcpPair(t)
	b, server := tcpPair(t)
	done = make(chan struct{})
	go func() { Pipe(a, b, idle); close(done) }()
	return client, server, done
}

func waitDone(t *testing.T, done chan struct{}, within time.Duration) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(within):
		t.Fatalf("Pipe still running after %v", within)
	}
}

// TestPipeHalfClose sends 1 MiB up and half-closes; the server must see
// EOF, and only then answers with 1 MiB of its own, which the client must
// receive whole before EOF. With and without an idle bound.
func TestPipeHalfClose(t *testing.T) {
	for _, idle := range []time.Duration{0, 5 * time.Second} {
		client, server, done := relayed(t, idle)
		up, down := make([]byte, 1<<20), make([]byte, 1<<20)
		rand.Read(up)
		rand.Read(down)
		go func() {
			client.Write(up)
			client.(*net.TCPConn).CloseWrite()
		}()
		got, err := io.ReadAll(server)
		if err != nil || !bytes.Equal(got, up) {
			t.Fatalf("idle %v: server got %d of %d bytes (%v)", idle, len(got), len(up), err)
		}
		go func() {
			server.Write(down)
			server.Close()
		}()
		back, err := io.ReadAll(client)
		if err != nil || !bytes.Equal(back, down) {
			t.Fatalf("idle %v: client got %d of %d bytes after its half-close (%v)", idle, len(back), len(down), err)
		}
		waitDone(t, done, 5*time.Second)
	}
}

// TestPipeIdle keeps one direction busy for several idle periods (the
// other silent): the relay stays up. Then, with no traffic at all, it
// closes both sides after about the idle time.
func TestPipeIdle(t *testing.T) {
	const idle = 200 * time.Millisecond
	client, server, done := relayed(t, idle)
	go func() {
		for range 12 {
			if _, err := client.Write([]byte("x")); err != nil {
				return
			}
			time.Sleep(idle / 4)
		}
	}()
	server.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(server, make([]byte, 12)); err != nil {
		t.Fatalf("relay closed while one direction was busy: %v", err)
	}
	quiet := time.Now()
	n, err := server.Read(make([]byte, 1))
	waited := time.Since(quiet)
	if n != 0 || err != io.EOF {
		t.Fatalf("after silence: read %d, %v; want EOF", n, err)
	}
	if waited < idle/2 || waited > idle+2*time.Second {
		t.Errorf("closed after %v of silence, want about %v", waited, idle)
	}
	waitDone(t, done, 2*time.Second)
}

// TestPipeNoIdleBound: with idle 0, a long silence does not end the relay.
func TestPipeNoIdleBound(t *testing.T) {
	client, server, done := relayed(t, 0)
	time.Sleep(300 * time.Millisecond)
	if _, err := client.Write([]byte("late")); err != nil {
		t.Fatal(err)
	}
	server.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, err := io.ReadAll(io.LimitReader(server, 4)); err != nil || string(b) != "late" {
		t.Fatalf("after 300 ms of silence: %q, %v", b, err)
	}
	client.Close()
	server.Close()
	waitDone(t, done, 5*time.Second)
}

// TestPipeReset: a client that resets its connection ends the relay, even
// though the server keeps its side open.
func TestPipeReset(t *testing.T) {
	client, server, done := relayed(t, 0)
	client.(*net.TCPConn).SetLinger(0)
	client.Close()
	server.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(server); err != nil {
		t.Fatalf("server after the client's reset: %v", err)
	}
	waitDone(t, done, 5*time.Second)
}

// TestPipeWithoutCloseWrite: a conn that cannot half-close (net.Pipe) is
// closed when the other side reaches EOF.
func TestPipeWithoutCloseWrite(t *testing.T) {
	client, a := net.Pipe()
	b, server := net.Pipe()
	done := make(chan struct{})
	go func() { Pipe(a, b, 0); close(done) }()
	go func() {
		client.Write([]byte("hello"))
		client.Close()
	}()
	got, err := io.ReadAll(server)
	if err != nil || string(got) != "hello" {
		t.Fatalf("server got %q, %v", got, err)
	}
	waitDone(t, done, 5*time.Second)
}
