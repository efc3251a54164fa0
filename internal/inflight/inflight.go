// Package inflight counts the goroutines a server runs, its own and those
// an http.Server starts for its connections and handlers, so that the
// server's Close can return only after every one of them has ended.
//
// A sync.WaitGroup does not fit: net/http starts HTTP/2 handler
// goroutines itself, so the count can go up from a goroutine the server
// did not start, possibly while Close is already waiting.
package inflight

import (
	"net"
	"net/http"
	"sync"
)

// Group counts running goroutines. The zero value is ready to use.
type Group struct {
	mu     sync.Mutex
	cond   *sync.Cond
	n      int
	closed bool
}

func (g *Group) add(d int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n += d
	if g.n == 0 && g.cond != nil {
		g.cond.Broadcast()
	}
}

// Go runs f on a new goroutine that Wait waits for.
func (g *Group) Go(f func()) {
	g.add(1)
	go func() {
		defer g.add(-1)
		f()
	}()
}

// ConnState returns an http.Server.ConnState hook that counts each
// connection from StateNew until StateClosed or StateHijacked (net/http
// calls these on the connection's own goroutine, StateClosed as it ends),
// then calls next, if any.
func (g *Group) ConnState(next func(net.Conn, http.ConnState)) func(net.Conn, http.ConnState) {
	return func(c net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			g.add(1)
		case http.StateClosed, http.StateHijacked:
			defer g.add(-1) // after next: it runs on the counted goroutine
		}
		if next != nil {
			next(c, st)
		}
	}
}

// Handler counts the requests h serves. Once Close was called it no
// longer calls h: an HTTP/2 handler goroutine that net/http started
// just before the connection closed answers 503 without entering h.
func (g *Group) Handler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		closed := g.closed
		g.n++
		g.mu.Unlock()
		defer g.add(-1)
		if closed {
			http.Error(w, "server closing", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Close makes Handler refuse new requests. It does not wait.
func (g *Group) Close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

// Wait blocks until every counted goroutine, connection and request has
// ended.
func (g *Group) Wait() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cond == nil {
		g.cond = sync.NewCond(&g.mu)
	}
	for g.n > 0 {
		g.cond.Wait()
	}
}
