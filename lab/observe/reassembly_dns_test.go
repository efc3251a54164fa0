package observe

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/echlab/echlab/lab/capture"
)

// TestDNSOverTCPManyQueries: a Do53-over-TCP connection carrying 3000
// queries (well past the 64 KiB a TLS direction keeps) still shows every
// query's name: the observer reads all of a DNS stream up to maxStream.
func TestDNSOverTCPManyQueries(t *testing.T) {
	conns := []capture.ScriptConn{{TCP: true, Client: netip.MustParseAddrPort("127.0.0.1:40000"),
		Server: netip.MustParseAddrPort("127.0.0.1:53")}}
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	events := []capture.ScriptEvent{{TS: ts, Kind: capture.EventOpen, Conn: 0}}
	const n = 3000
	for i := range n {
		m := new(dns.Msg)
		m.SetQuestion(fmt.Sprintf("q%04d.with-a-long-label-to-fill-the-stream.lab.test.", i), dns.TypeHTTPS)
		m.Id = uint16(i)
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		framed := binary.BigEndian.AppendUint16(nil, uint16(len(b)))
		events = append(events, capture.ScriptEvent{TS: ts, Kind: capture.EventData, Conn: 0, FromClient: true, Data: append(framed, b...)})
	}
	events = append(events, capture.ScriptEvent{TS: ts, Kind: capture.EventClose, Conn: 0, FromClient: true},
		capture.ScriptEvent{TS: ts, Kind: capture.EventClose, Conn: 0})
	var buf bytes.Buffer
	if err := capture.WriteScript(&buf, conns, events); err != nil {
		t.Fatal(err)
	}
	if buf.Len() < 2*maxKept {
		t.Fatalf("capture of %d bytes does not exceed what a TLS direction keeps", buf.Len())
	}
	rep, err := Compare(&buf, CompareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Flows) != 1 {
		t.Fatalf("%d flows", len(rep.Flows))
	}
	msgs := rep.Flows[0].DNS
	if len(msgs) != n {
		t.Fatalf("%d DNS messages read, want %d (warnings %v)", len(msgs), n, rep.Flows[0].Warnings)
	}
	if last := msgs[n-1]; last.ID != n-1 || last.Name != fmt.Sprintf("q%04d.with-a-long-label-to-fill-the-stream.lab.test.", n-1) {
		t.Errorf("last message %+v", last)
	}
}
