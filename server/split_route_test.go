package server

import (
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"
)

// TestSplitCatchAll sends ClientHellos whose names have no exact route to
// the relay: the "*" route takes them (ECH and passthrough alike), and
// without a "*" route the connection is closed and logged as unrouted.
func TestSplitCatchAll(t *testing.T) {
	l := startSplitLab(t, false)
	// ECH, inner name without an exact route: the relay forwards the
	// inner ClientHello to the catch-all (plain), which answers for it
	// with the certificate it has; the client does not verify it here.
	cfg := clientTLS(t, "unrouted.lab.test", configList(t, l.key))
	cfg.InsecureSkipVerify = true
	c, err := tls.Dial("tcp", l.split.Addr(), cfg)
	if err != nil {
		t.Fatalf("ECH to the catch-all: %v", err)
	}
	if !c.ConnectionState().ECHAccepted {
		t.Error("ECH to the catch-all: not accepted")
	}
	c.Close()
	// No ECH, unknown name: passthrough to the catch-all.
	cfg = clientTLS(t, "nowhere.lab.test", nil)
	cfg.InsecureSkipVerify = true
	c, err = tls.Dial("tcp", l.split.Addr(), cfg)
	if err != nil {
		t.Fatalf("passthrough to the catch-all: %v", err)
	}
	c.Close()
	recs := l.sLog.waitRecords(t, 2)
	if len(recs) != 2 {
		t.Fatalf("relay log: %+v", recs)
	}
	// Each record is written when its connection ends, so the second
	// connection's may come first: find each by its route.
	if recs[0].Route != "ech" {
		recs[0], recs[1] = recs[1], recs[0]
	}
	for i, want := range []struct{ route, sni string }{{"ech", "unrouted.lab.test"}, {"passthrough", "nowhere.lab.test"}} {
		r := recs[i]
		got := r.OuterSNI
		if want.route == "ech" {
			got = r.InnerSNI
		}
		if r.Route != want.route || r.Backend != l.plain.Addr() || got != want.sni || r.Error != "" {
			t.Errorf("record %d = %+v, want route %s to %s (the catch-all) for %s", i, r, want.route, l.plain.Addr(), want.sni)
		}
	}

	// Without a catch-all, an unknown name has nowhere to go.
	sLog := &syncBuffer{}
	sp, err := StartSplit(SplitConfig{Keys: l.keys, CA: testCA(t), Log: sLog, Routes: Routes{"secret.lab.test": l.a.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	raw, err := net.Dial("tcp", sp.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(5 * time.Second))
	if err := tls.Client(raw, clientTLS(t, "nowhere.lab.test", nil)).Handshake(); err == nil {
		t.Error("handshake without a route succeeded")
	}
	if recs := sLog.waitRecords(t, 1); len(recs) != 1 || !strings.HasPrefix(recs[0].Error, ErrNoRoute.Error()) {
		t.Errorf("unrouted record: %+v", recs)
	}
}
