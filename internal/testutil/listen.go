package testutil

import (
	"net"
	"testing"
)

// ListenTCP listens on a free TCP port of 127.0.0.1 and closes the
// listener when the test ends.
func ListenTCP(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// ServeOnce accepts one connection on a fresh loopback listener (see
// ListenTCP), hands it to serve on its own goroutine and closes it when
// serve returns. It returns the listener's address. If the accept fails
// (the test ended first), serve is not called.
func ServeOnce(t testing.TB, serve func(net.Conn)) string {
	t.Helper()
	ln := ListenTCP(t)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		serve(c)
	}()
	return ln.Addr().String()
}

// ServeEach accepts every connection on a fresh loopback listener (see
// ListenTCP) and serves each as AcceptEach does. It returns the
// listener's address.
func ServeEach(t testing.TB, serve func(net.Conn)) string {
	t.Helper()
	ln := ListenTCP(t)
	AcceptEach(t, ln, serve)
	return ln.Addr().String()
}

// AcceptEach accepts every connection of ln until ln is closed (the
// caller closes it, e.g. through ListenTCP) and hands each to serve on its
// own goroutine. A connection is closed when serve returns or when the
// test ends, whichever comes first.
func AcceptEach(t testing.TB, ln net.Listener, serve func(net.Conn)) {
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				<-done
				c.Close()
			}()
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
}
