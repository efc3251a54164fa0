package capture

import (
	"net"
	"runtime"
	"sync"
	"testing"
	"time"
)

// slowLog is a Filter that takes a while over each ClientHello before it
// logs it, as a relay under load does.
type slowLog struct {
	delay time.Duration
	mu    sync.Mutex
	n     int
}

func (l *slowLog) Stream(Flow, []byte) Verdict {
	time.Sleep(l.delay)
	l.mu.Lock()
	l.n++
	l.mu.Unlock()
	return Pass
}

func (l *slowLog) Datagram(_ Flow, _ bool, b []byte) ([]byte, Verdict) { return b, Pass }

func (l *slowLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

// TestObserverSettle: clients that send their ClientHello and go away at
// once (as a browser's preconnects do when it exits) are all in the
// Filter's log when Settle returns, though the Filter is slow; Settle
// reports false while one is still with the Filter.
func TestObserverSettle(t *testing.T) {
	f := &slowLog{delay: 100 * time.Millisecond}
	o, _ := newObserver(t, f)
	baddr, _ := backend(t)
	addr, err := o.RelayTCP("https/shared", baddr)
	if err != nil {
		t.Fatal(err)
	}
	hello := clientHello(t, "public.lab.test")
	const clients = 5
	for range clients {
		c := dial(t, addr)
		if _, err := c.Write(hello); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	if f.count() == clients {
		t.Fatal("the Filter logged every ClientHello at once: the test shows nothing")
	}
	if o.Settle(20 * time.Millisecond) {
		t.Error("Settle reported settled while the Filter still had ClientHellos")
	}
	if !o.Settle(5 * time.Second) {
		t.Fatal("not settled after 5 s")
	}
	if n := f.count(); n != clients {
		t.Errorf("after Settle the Filter has logged %d ClientHellos, want %d", n, clients)
	}
}

// TestAcceptQueue: established connections not yet accepted are counted
// (Linux), so Settle waits for them too.
func TestAcceptQueue(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the accept queue is read on Linux only")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for i := range 3 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if n, ok := acceptQueue(ln); !ok || n != i+1 {
			t.Fatalf("after %d connections: queue %d (%v)", i+1, n, ok)
		}
	}
	a, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	if n, ok := acceptQueue(ln); !ok || n != 2 {
		t.Errorf("after one Accept: queue %d (%v), want 2", n, ok)
	}
}
