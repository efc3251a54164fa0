package lab

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"net"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/quic-go/quic-go/http3"

	"github.com/echlab/echlab/client"
	"github.com/echlab/echlab/internal/labtest"
	"github.com/echlab/echlab/lab/observe"
	"github.com/echlab/echlab/resolver"
)

// TestCaseRecordKeepsTimedOutQUICAttempt is the cause of a CI flake in
// TestRunJoinsExactly/live ("flow (quic h3): by ”, want by
// client_random"): a QUIC attempt whose handshake timed out wrote no
// keylog line, so the case never recorded its random although its
// Initials were on the wire. Here the secret name's first address is a
// UDP black hole and its second a real HTTP/3 server with ECH: with the
// options the player gives a case, the case record holds the black hole's
// random (read back from the Initial that reached it, as the observer
// reads it), the outer random of the connection that worked, and the inner
// one of its keylog lines.
func TestCaseRecordKeepsTimedOutQUICAttempt(t *testing.T) {
	l := labtest.NewTLS(t)
	srvTLS := l.Server.Clone()
	srvTLS.NextProtos = []string{"h3"}
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	h3 := &http3.Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), TLSConfig: srvTLS}
	go h3.Serve(udp)
	t.Cleanup(func() { h3.Close(); udp.Close() })
	port := udp.LocalAddr().(*net.UDPAddr).Port
	hole, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	defer hole.Close()
	p := strconv.Itoa(port)
	dnsURL := startZone(t,
		"_"+p+"._https."+SecretName+". 60 IN HTTPS 1 "+SecretName+". alpn=h3 ech="+base64.StdEncoding.EncodeToString(l.List),
		SecretName+". 60 IN A 127.0.0.2", SecretName+". 60 IN A 127.0.0.1")
	stub, err := resolver.NewClient(dnsURL, resolver.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer stub.Close()

	pl := &player{cfg: PlayConfig{SecretName: SecretName, Port: port, RootCAs: l.CA.Pool(),
		DNS: map[string]string{DNSDo53: dnsURL}, CaseTimeout: 10 * time.Second}}
	c := Case{Scenario: "ech-shared-h3", Transport: DNSDo53, Repeat: 1}
	rec := newCaseRecord(nil)
	o := pl.options(c, stub, rec)
	o.HandshakeTimeout = 300 * time.Millisecond // the black hole's
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := client.Fetch(ctx, pl.url(c), o)
	if err != nil || r.ECH != client.ECHAccepted || !o.HTTP3 {
		t.Fatalf("fetch: %v, ECH %s, HTTP/3 %v", err, r.ECH, o.HTTP3)
	}
	var cr CaseResult
	rec.fill(&cr)
	wire := holeRandom(t, hole)
	if len(cr.ClientRandoms) != 3 || !slices.Contains(cr.ClientRandoms, hex.EncodeToString(wire)) {
		t.Errorf("case randoms %v; want 3 (black hole, outer, inner) with the black hole's %x", cr.ClientRandoms, wire)
	}
}

// holeRandom reads the client's Initials waiting at hole with
// observe.QUICHello and returns its ClientHello's random.
func holeRandom(t *testing.T, hole *net.UDPConn) []byte {
	t.Helper()
	hole.SetReadDeadline(time.Now().Add(5 * time.Second))
	var q observe.QUICHello
	buf := make([]byte, 2048)
	for {
		n, _, err := hole.ReadFrom(buf)
		if err != nil {
			t.Fatalf("no whole ClientHello at the black hole: %v", err)
		}
		if msg, ok, _ := q.Add(buf[:n]); ok {
			return bytes.Clone(msg[6:38])
		}
	}
}

// startZone serves the records over Do53/UDP on 127.0.0.1:0 and returns
// the resolver URL.
func startZone(t *testing.T, records ...string) string {
	t.Helper()
	var rrs []dns.RR
	for _, s := range records {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		rrs = append(rrs, rr)
	}
	h := resolver.HandlerFunc(func(_ context.Context, req *dns.Msg, _ resolver.Meta) *dns.Msg {
		m := new(dns.Msg)
		m.SetReply(req)
		for _, rr := range rrs {
			if h := rr.Header(); dns.CanonicalName(h.Name) == dns.CanonicalName(req.Question[0].Name) && h.Rrtype == req.Question[0].Qtype {
				m.Answer = append(m.Answer, dns.Copy(rr))
			}
		}
		return m
	})
	srv, err := resolver.StartUDP(h, "127.0.0.1:0", 1232)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return "udp://" + srv.Addr().String()
}
