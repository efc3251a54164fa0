package server

import (
	"errors"
	"io"
	"log"
	"net"
	"sync"
)

// connQueue is a net.Listener whose Accept returns connections pushed by
// the server after their TLS handshake, so that net/http serves only
// handshaken (and logged) connections.
type connQueue struct {
	addr net.Addr
	ch   chan net.Conn

	once sync.Once
	done chan struct{}
}

func newConnQueue(addr net.Addr) *connQueue {
	return &connQueue{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

// push hands c to Accept, or closes it when the queue is closed.
func (q *connQueue) push(c net.Conn) {
	select {
	case q.ch <- c:
	case <-q.done:
		c.Close()
	}
}

// Accept returns the next pushed connection.
func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.ch:
		return c, nil
	case <-q.done:
		return nil, net.ErrClosed
	}
}

// Close makes Accept and push return.
func (q *connQueue) Close() error {
	q.once.Do(func() { close(q.done) })
	return nil
}

// Addr returns the address of the real listener.
func (q *connQueue) Addr() net.Addr { return q.addr }

// discardLogger silences net/http's per-connection error log (handshake
// errors are in the ConnRecords instead).
func discardLogger() *log.Logger { return log.New(io.Discard, "", 0) }

// acceptEach calls handle with every connection ln accepts, until ln
// fails with anything but a timeout (it is closed).
func acceptEach(ln net.Listener, handle func(net.Conn)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		handle(c)
	}
}
