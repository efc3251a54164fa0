package resolver

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// tcpAsker sends queries over one Do53 TCP connection, one at a time.
type tcpAsker struct{ c net.Conn }

func newTCPAsker(t *testing.T, addr net.Addr) *tcpAsker {
	t.Helper()
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &tcpAsker{c: c}
}

func (a *tcpAsker) ask(t *testing.T, q []byte) []byte {
	t.Helper()
	a.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := a.c.Write(frame(q)); err != nil {
		t.Fatal(err)
	}
	var n [2]byte
	if _, err := io.ReadFull(a.c, n[:]); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, int(n[0])<<8|int(n[1]))
	if _, err := io.ReadFull(a.c, b); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTCPFastPathMatchesSlow: over Do53 TCP, every name × type of the test
// zone in every query variant (EDNS or not, DO, RD, mixed case, NXDOMAIN,
// NODATA...) is answered byte for byte as the slow path answers it, on
// one connection each, twice (the second time from compiled answers,
// large ones included, which UDP would truncate).
func TestTCPFastPathMatchesSlow(t *testing.T) {
	a := testAuthority(t)
	fastSrv, err := StartTCP(a, "")
	if err != nil {
		t.Fatal(err)
	}
	defer fastSrv.Close()
	slowSrv, err := StartTCP(HandlerFunc(a.Answer), "")
	if err != nil {
		t.Fatal(err)
	}
	defer slowSrv.Close()
	if fastSrv.fast == nil || slowSrv.fast != nil {
		t.Fatal("fast path not chosen as expected")
	}
	fc, sc := newTCPAsker(t, fastSrv.Addr()), newTCPAsker(t, slowSrv.Addr())
	id, big := uint16(0), 0
	for range 2 {
		for _, q := range zoneQuestions(a.Zones()) {
			for _, v := range queryVariants {
				id++
				b := v.pack(t, q, id)
				got, want := fc.ask(t, b), sc.ask(t, b)
				if !bytes.Equal(got, want) {
					t.Fatalf("%s %s %s:\nfast %x\nslow %x", q.Name, dns.Type(q.Qtype), v.name, got, want)
				}
				if len(got) > 512 {
					big++
				}
			}
		}
	}
	if big == 0 {
		t.Error("no answer over 512 bytes: the zone does not test answers UDP would truncate")
	}
}

// TestTCPFastPathLogsAndCounts: the query log and the metrics see the
// same queries whether the TCP fast path or the slow path answered them.
func TestTCPFastPathLogsAndCounts(t *testing.T) {
	a := testAuthority(t)
	var logs [2]strings.Builder
	var metrics [2]*Metrics
	qs := []dns.Question{{Name: "public.lab.test.", Qtype: dns.TypeA, Qclass: dns.ClassINET},
		{Name: "nope.lab.test.", Qtype: dns.TypeAAAA, Qclass: dns.ClassINET},
		{Name: "svc.lab.test.", Qtype: dns.TypeHTTPS, Qclass: dns.ClassINET}}
	for i, fast := range []bool{true, false} {
		metrics[i] = newMetrics()
		h := withQueryLog(metrics[i].Wrap(a), &logs[i], nil)
		if !fast {
			h = HandlerFunc(h.Answer)
		}
		srv, err := StartTCP(h, "")
		if err != nil {
			t.Fatal(err)
		}
		if (srv.fast != nil) != fast {
			t.Fatalf("fast=%v: server fast %v", fast, srv.fast != nil)
		}
		c := newTCPAsker(t, srv.Addr())
		for range 2 {
			for j, q := range qs {
				for k, v := range queryVariants {
					c.ask(t, v.pack(t, q, uint16(j*100+k)))
				}
			}
		}
		srv.Close()
	}
	var entries [2][]QueryLogEntry
	for i := range logs {
		for _, line := range strings.Split(strings.TrimSpace(logs[i].String()), "\n") {
			var e QueryLogEntry
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			if !strings.HasPrefix(e.Client, "127.0.0.1:") || e.Time == "" || e.Transport != TransportTCP {
				t.Errorf("entry %+v", e)
			}
			e.Time, e.LatencyUS, e.Client = "", 0, ""
			entries[i] = append(entries[i], e)
		}
	}
	if len(entries[0]) != 2*len(qs)*len(queryVariants) || !slices.Equal(entries[0], entries[1]) {
		t.Errorf("query logs differ:\nfast %v\nslow %v", entries[0], entries[1])
	}
	if f, s := gatherCounts(t, metrics[0]), gatherCounts(t, metrics[1]); f != s || !strings.Contains(f, `transport="tcp"`) {
		t.Errorf("metrics differ:\nfast %s\nslow %s", f, s)
	}
}
