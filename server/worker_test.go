package server

import (
	"crypto/tls"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/echlab/echlab/internal/testutil"
)

// TestHandshakeWorkers: connections made one after another are
// handshaken by one worker goroutine, not one goroutine each; eight at
// once start no more than eight workers, which end after
// handshakeWorkerIdle without a connection; a connection after that
// starts a new one; every connection is served (a request on each), and
// Close leaves no worker behind.
func TestHandshakeWorkers(t *testing.T) {
	defer func(d time.Duration) { handshakeWorkerIdle = d }(handshakeWorkerIdle)
	handshakeWorkerIdle = 300 * time.Millisecond
	before := testutil.Goroutines()
	s, err := Start(Config{CA: testCA(t), Keys: NewStaticKeys(newKey(t, 1))})
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{RootCAs: testCA(t).Pool(), ServerName: s.PublicName(), NextProtos: []string{"http/1.1"}}
	get := func() {
		t.Helper()
		c := httpClient(s.Addr(), cfg.Clone())
		c.Transport.(*http.Transport).DisableKeepAlives = true
		resp, err := c.Get("https://" + s.PublicName() + "/")
		if err != nil {
			t.Error(err)
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("status %d", resp.StatusCode)
		}
	}
	// idle waits until no handshake is in flight, and a little for the
	// worker to be back waiting.
	idle := func() {
		for {
			s.mu.Lock()
			n := len(s.handshaking)
			s.mu.Unlock()
			if n == 0 {
				break
			}
			time.Sleep(time.Millisecond)
		}
		time.Sleep(5 * time.Millisecond)
	}
	const serial = 20
	for range serial {
		get()
		idle()
	}
	// A worker is busy until its handshake is pushed to net/http; on a
	// loaded machine one may not be back in time now and then.
	if n := s.workers.Load(); n > 3 {
		t.Fatalf("%d workers for %d connections one after another, want 1", n, serial)
	}
	started := s.workers.Load()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(get)
	}
	wg.Wait()
	if n := s.workers.Load() - started; n > 8 {
		t.Fatalf("%d workers started for 8 connections at once", n)
	}
	live := func() int { return len(testutil.NewGoroutines(before, "server.(*Server).handshakeWorker")) }
	if n := live(); n == 0 {
		t.Fatal("no worker waits after the connections")
	}
	deadline := time.Now().Add(5 * time.Second)
	for live() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d workers still there %v after the last connection", live(), 5*time.Second)
		}
		time.Sleep(20 * time.Millisecond)
	}
	started = s.workers.Load()
	get()
	if n := s.workers.Load() - started; n != 1 {
		t.Fatalf("%d workers started for a connection after the others ended, want 1", n)
	}
	closeAndCheck(t, before, s.Close, func() {})
}
