package observe

import (
	"net"
	"testing"
	"time"

	"github.com/echlab/echlab/lab/capture"
	"github.com/miekg/dns"
)

// startDNS runs a miekg/dns server on loopback UDP and TCP that answers
// HTTPS questions with an ech= record and everything else with NXDOMAIN.
func startDNS(t *testing.T) (udpAddr, tcpAddr string) {
	t.Helper()
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if r.Question[0].Qtype == dns.TypeHTTPS {
			rr, err := dns.NewRR(r.Question[0].Name + " 60 IN HTTPS 1 . alpn=h2 ech=AEX+DQBB")
			if err != nil {
				t.Error(err)
			}
			m.Answer = append(m.Answer, rr)
		} else {
			m.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(m)
	})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{}, 2)
	note := func() { started <- struct{}{} }
	us := &dns.Server{PacketConn: pc, Handler: h, NotifyStartedFunc: note}
	ts := &dns.Server{Listener: ln, Handler: h, NotifyStartedFunc: note}
	go us.ActivateAndServe()
	go ts.ActivateAndServe()
	<-started
	<-started
	t.Cleanup(func() { us.Shutdown(); ts.Shutdown() })
	return pc.LocalAddr().String(), ln.Addr().String()
}

func exchange(t *testing.T, rec *capture.Recorder, network, addr, name string, qtype uint16) {
	t.Helper()
	raw, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn := &dns.Conn{Conn: rec.WrapDialedConn(raw)}
	defer conn.Close()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	c := &dns.Client{Net: network, Timeout: 5 * time.Second}
	if _, _, err := c.ExchangeWithConn(m, conn); err != nil {
		t.Fatal(err)
	}
}

func TestDo53UDPAndTCP(t *testing.T) {
	udpAddr, tcpAddr := startDNS(t)
	rec := capture.NewRecorder()
	exchange(t, rec, "udp", udpAddr, "secret.lab.test.", dns.TypeHTTPS)
	exchange(t, rec, "tcp", tcpAddr, "other.lab.test.", dns.TypeA)
	rep := compareFile(t, writeCapture(t, rec), CompareOptions{})
	if len(rep.Flows) != 2 {
		t.Fatalf("got %d flows: %+v", len(rep.Flows), rep.Flows)
	}
	u, tc := rep.Flows[0], rep.Flows[1]
	if u.Transport != TransportUDPDNS || len(u.DNS) != 2 || u.DNS[0].Name != "secret.lab.test." || u.DNS[0].Type != "HTTPS" ||
		u.DNS[0].Response || !u.DNS[1].Response || !u.DNS[1].HasECH || u.DNS[1].Rcode != "NOERROR" {
		t.Errorf("UDP flow: %s %+v", u.Transport, u.DNS)
	}
	if tc.Transport != TransportTCPDNS || len(tc.DNS) != 2 || tc.DNS[1].Rcode != "NXDOMAIN" || tc.DNS[1].HasECH {
		t.Errorf("TCP flow: %s %+v %v", tc.Transport, tc.DNS, tc.Warnings)
	}
	names := map[string]string{}
	for _, s := range rep.Summary {
		for _, n := range s.Names {
			names[n.Name] = n.Source
		}
	}
	if names["secret.lab.test"] != SourceDNSQuery || names["other.lab.test"] != SourceDNSQuery {
		t.Errorf("privacy summary names: %v", names)
	}
}
