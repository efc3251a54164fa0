package inflight

import (
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestWaitCoversServeConnsAndHandlers serves on loopback with every hook
// of a Group: Wait returns only after the handler in flight, its
// connection and Serve have ended, and a request after Close gets 503
// without reaching the handler.
func TestWaitCoversServeConnsAndHandlers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &Group{}
	entered, release := make(chan struct{}, 2), make(chan struct{})
	srv := &http.Server{ConnState: g.ConnState(nil), Handler: g.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
	}))}
	g.Go(func() { srv.Serve(ln) })
	go http.Get("http://" + ln.Addr().String() + "/")
	<-entered

	g.Close()
	c, err := net.Dial("tcp", ln.Addr().String()) // a request once closed
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	buf := make([]byte, 12)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "HTTP/1.1 503" {
		t.Fatalf("after Close: %q, %v; want a 503", buf, err)
	}
	srv.Close()
	waited := make(chan struct{})
	go func() { g.Wait(); close(waited) }()
	select {
	case <-waited:
		t.Fatal("Wait returned while a handler was running")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	select {
	case <-waited:
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not return once the handler did")
	}
	select {
	case <-entered:
		t.Fatal("a request after Close reached the handler")
	default:
	}
}

// TestConnStateCallsNext checks that the hook passes every state on.
func TestConnStateCallsNext(t *testing.T) {
	g := &Group{}
	var got []http.ConnState
	hook := g.ConnState(func(_ net.Conn, st http.ConnState) { got = append(got, st) })
	for _, st := range []http.ConnState{http.StateNew, http.StateActive, http.StateIdle, http.StateClosed} {
		hook(nil, st)
	}
	if len(got) != 4 {
		t.Fatalf("next saw %v", got)
	}
	g.Wait() // StateNew and StateClosed balance: does not block
}
