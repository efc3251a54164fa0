package interop

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/echlab/echlab/lab/adversary"
	"github.com/echlab/echlab/lab/capture"
	"github.com/miekg/dns"
)

// TestDo53Front sends DNS queries over UDP and TCP through the front and
// an adversary's Do53 relays to a real DNS server: the answers come back
// (the id kept), the adversary saw each query name, and Close returns.
func TestDo53Front(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
			A: net.IPv4(127, 0, 0, 1)})
		w.WriteMsg(m) //nolint:errcheck // test server
	})
	for _, s := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		go s.ActivateAndServe() //nolint:errcheck // ends at Shutdown
		t.Cleanup(func() { s.Shutdown() })
	}
	a := adversary.New(nil)
	obs := &capture.Observer{Filter: a}
	t.Cleanup(func() { obs.Close() })
	udp, err := obs.RelayUDP(capture.RoleDo53, pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	tcp, err := obs.RelayTCP(capture.RoleDo53, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	f, err := StartDo53Front("127.0.0.1:0", udp, tcp)
	if err != nil {
		t.Fatal(err)
	}
	for _, netw := range []string{"udp", "tcp"} {
		c := &dns.Client{Net: netw, Timeout: 5 * time.Second}
		q := new(dns.Msg)
		q.SetQuestion(netw+".secret.lab.test.", dns.TypeA)
		r, _, err := c.Exchange(q, f.Addr())
		if err != nil {
			t.Fatalf("%s: %v", netw, err)
		}
		if r.Id != q.Id || len(r.Answer) != 1 {
			t.Errorf("%s: answer %v to query id %d", netw, r, q.Id)
		}
	}
	if got := leaks(a.Seen(), "secret.lab.test"); len(got) != 1 || got[0] != LeakDNS {
		t.Errorf("leaks = %q, want [dns]; the adversary saw %+v", got, a.Seen())
	}
	// A TCP client that stays open does not hold Close.
	c, err := net.Dial("tcp", f.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	done := make(chan error, 1)
	go func() { done <- f.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return with a client connected")
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck // test
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Errorf("the client's connection stayed open after Close")
		}
	}
}
