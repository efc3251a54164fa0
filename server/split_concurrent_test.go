package server

import (
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/echlab/echlab/ech"
)

// TestSplitConcurrentFirstUse replays one real ECH ClientHello (crypto/tls,
// config current) eight times at once to a split front that has just
// loaded its key from disk, round after round: every copy must be opened
// and routed (ech=accepted in the front's log). Before the decoded-key
// cache was made safe for concurrent first use, this rejected some copies
// (12 of 30 rounds with a real Chromium hello), and -race reported the
// lazy public key in circl.
func TestSplitConcurrentFirstUse(t *testing.T) {
	const rounds, copies = 30, 8
	backend := startServer(t, Config{Names: []string{"secret.lab.test"}, Mode: "split-backend"})
	for round := range rounds {
		// A new key each round, saved and loaded back as a server does:
		// nothing about it is decoded yet when the copies arrive.
		dir := filepath.Join(t.TempDir(), "keys")
		saved := &ech.KeySet{}
		saved.Add(newKey(t, 9), true)
		if err := ech.SaveKeySet(dir, saved); err != nil {
			t.Fatal(err)
		}
		list, _ := saved.ConfigList()
		hello := clientHelloRecords(t, clientTLS(t, "secret.lab.test", list))
		ks, err := ech.LoadKeySet(dir)
		if err != nil {
			t.Fatal(err)
		}
		log := &syncBuffer{}
		sp, err := StartSplit(SplitConfig{Keys: ks, CA: testCA(t), Log: log,
			Routes: Routes{"secret.lab.test": backend.Addr()}})
		if err != nil {
			t.Fatal(err)
		}
		start := make(chan struct{})
		var wg sync.WaitGroup
		for range copies {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := net.Dial("tcp", sp.Addr())
				if err != nil {
					t.Error(err)
					return
				}
				defer c.Close()
				<-start
				c.Write(hello)                                     //nolint:errcheck
				c.SetReadDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
				c.Read(make([]byte, 1))                            //nolint:errcheck // the ServerHello's first byte: the front has decided
			}()
		}
		close(start)
		wg.Wait()
		recs := log.waitRecords(t, copies)
		accepted := 0
		for _, r := range recs {
			if r.ECH == ECHAccepted && r.InnerSNI == "secret.lab.test" {
				accepted++
			} else {
				t.Errorf("round %d: ech=%q route %q error %q", round, r.ECH, r.Route, r.Error)
			}
		}
		sp.Close()
		if accepted != copies {
			t.Fatalf("round %d: %d of %d concurrent copies accepted", round, accepted, copies)
		}
	}
}
