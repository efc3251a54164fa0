package lab

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/lab/capture"
	"github.com/echlab/echlab/lab/observe"
	"github.com/echlab/echlab/resolver"
)

// joinLab is a recorded TLS server and Do53 UDP server on loopback, and a
// run folder for scenarios.jsonl and the lab's logs.
type joinLab struct {
	tls     *labTLS
	rec     *capture.Recorder
	tlsAddr string
	dnsAddr string
	dir     string
	logs    map[string][]string // file → JSON lines
}

func newJoinLab(t *testing.T) *joinLab {
	t.Helper()
	l := &joinLab{tls: newLabTLS(t), rec: capture.NewRecorder(), dir: t.TempDir(), logs: map[string][]string{}}
	l.tlsAddr = serveTLS(t, l.rec, l.tls.Server)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	l.dnsAddr = pc.LocalAddr().String()
	go answerDNS(l.rec.WrapPacketConn(pc))
	return l
}

// answerDNS answers every query with NXDOMAIN until pc closes.
func answerDNS(pc net.PacketConn) {
	buf := make([]byte, 1500)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		var q dns.Msg
		if q.Unpack(buf[:n]) != nil {
			continue
		}
		b, _ := new(dns.Msg).SetRcode(&q, dns.RcodeNameError).Pack()
		pc.WriteTo(b, from) //nolint:errcheck
	}
}

// freePort returns a port number that is free on loopback for both TCP
// and UDP.
func freePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := pc.LocalAddr().(*net.UDPAddr).Port
		pc.Close()
		if ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p)); err == nil {
			ln.Close()
			return p
		}
	}
	t.Fatal("no port free for both TCP and UDP")
	return 0
}

// dialFrom makes one TLS connection from localPort (0: any) with keylog.
func (l *joinLab) dialFrom(t *testing.T, localPort int, cfg *tls.Config, keylog io.Writer) {
	t.Helper()
	cfg.KeyLogWriter = keylog
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: localPort}}
	c, err := tls.DialWithDialer(d, "tcp", l.tlsAddr, cfg)
	if err != nil {
		t.Fatalf("dial from port %d: %v", localPort, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
}

// query asks one Do53 UDP question from localPort through the resolver
// package's stub, wrapped as runCase wraps it.
func (l *joinLab) query(t *testing.T, localPort int, rec *caseRecord) {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: localPort}}
	c, err := resolver.NewClient("udp://"+l.dnsAddr, resolver.ClientOptions{Dialer: d, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	stub := idStub{Client: c, rec: rec}
	if _, err := stub.Exchange(context.Background(), new(dns.Msg).SetQuestion("secret.lab.test.", dns.TypeHTTPS)); err != nil {
		t.Fatal(err)
	}
}

// log adds a line to server.jsonl or queries.jsonl as the lab's servers
// and resolver write them.
func (l *joinLab) log(file, transport string, localPort int) {
	key := map[string]string{FileServer: "client_addr", FileQueries: "client"}[file]
	b, _ := json.Marshal(map[string]any{"time": time.Now(), "transport": transport, key: fmt.Sprintf("127.0.0.1:%d", localPort)})
	l.logs[file] = append(l.logs[file], string(b))
}

// compare writes the logs and scenarios.jsonl for cases as a live run
// does, and compares the capture with them.
func (l *joinLab) compare(t *testing.T, cases []CaseResult, keys ech.KeySource) (*observe.Report, []observe.ScenarioRule) {
	t.Helper()
	for file, lines := range l.logs {
		if err := os.WriteFile(filepath.Join(l.dir, file), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := writeScenarioMap(l.dir, cases, true); err != nil {
		t.Fatal(err)
	}
	rules := readRules(t, l.dir)
	return compareFile(t, writeCapture(t, l.rec), observe.CompareOptions{Keys: keys, Scenarios: rules}), rules
}

// flowOf finds the flow of a transport from a client port.
func flowOf(t *testing.T, rep *observe.Report, transport string, port int) *observe.Flow {
	t.Helper()
	for _, f := range rep.Flows {
		if f.Transport == transport && int(f.Client.Port()) == port {
			return f
		}
	}
	t.Fatalf("no %s flow from port %d in %d flows", transport, port, len(rep.Flows))
	return nil
}

// caseAt runs fn as a case and returns its result with what rec recorded.
func caseAt(c Case, fn func(rec *caseRecord)) CaseResult {
	cr := CaseResult{Case: c, Start: time.Now()}
	rec := newCaseRecord(nil)
	fn(rec)
	cr.End = time.Now()
	rec.fill(&cr)
	return cr
}

// TestScenarioJoinTransport: a DoH case's TLS connection and a later Do53
// case's UDP query leave from the same port number. Joined by client port
// alone (the old map) both flows took the DoH case; now the TCP flow
// joins the DoH case by protocol and port and the UDP flow the Do53 case
// by protocol, port and query id. A flow no key matches is joined by time
// window and named in a report warning.
func TestScenarioJoinTransport(t *testing.T) {
	l := newJoinLab(t)
	p := freePort(t)
	doh := caseAt(Case{Scenario: "ech-shared", Transport: DNSDoH, Repeat: 1}, func(*caseRecord) {
		l.dialFrom(t, p, l.tls.Client("plain.lab.test", false, "h2"), nil) // no keylog: no random
		l.log(FileServer, "tcp", p)
	})
	var other int
	do53 := caseAt(Case{Scenario: "baseline", Transport: DNSDo53, Repeat: 1}, func(rec *caseRecord) {
		l.query(t, p, rec)
		l.log(FileQueries, "udp", p)
		other = freePort(t)
		l.dialFrom(t, other, l.tls.Client("plain.lab.test", false, "h2"), nil) // logged nowhere
	})
	if len(do53.DNSIDs) != 1 {
		t.Fatalf("the Do53 case recorded ids %v, want one", do53.DNSIDs)
	}
	rep, rules := l.compare(t, []CaseResult{doh, do53}, nil)

	tcp, udp := flowOf(t, rep, observe.TransportTCP, p), flowOf(t, rep, observe.TransportUDPDNS, p)
	if tcp.Scenario != "ech-shared/doh" || tcp.ScenarioBy != observe.JoinClientPort {
		t.Errorf("TCP flow from %d: %s by %s, want ech-shared/doh by %s", p, tcp.Scenario, tcp.ScenarioBy, observe.JoinClientPort)
	}
	if udp.Scenario != "baseline/do53" || udp.ScenarioBy != observe.JoinDNSID || udp.DNS[0].ID != do53.DNSIDs[0] {
		t.Errorf("UDP flow from %d: %s by %s, want baseline/do53 by %s", p, udp.Scenario, udp.ScenarioBy, observe.JoinDNSID)
	}
	late := flowOf(t, rep, observe.TransportTCP, other)
	if late.Scenario != "baseline/do53" || late.ScenarioBy != observe.JoinTimeWindow {
		t.Errorf("unlogged flow: %s by %s, want baseline/do53 by %s", late.Scenario, late.ScenarioBy, observe.JoinTimeWindow)
	}
	want := fmt.Sprintf("flows %d", late.ID)
	if len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "1 flows joined by time window only") || !strings.HasSuffix(rep.Warnings[0], want) {
		t.Errorf("report warnings %q, want one naming flow %d", rep.Warnings, late.ID)
	}

	// Without query ids, the protocol in the port rules alone keeps the
	// UDP flow out of the DoH case.
	var noIDs []observe.ScenarioRule
	for _, r := range rules {
		if r.ClientPort != 0 {
			r.DNSIDs = nil
			noIDs = append(noIDs, r)
		}
	}
	rep = compareFile(t, writeCapture(t, l.rec), observe.CompareOptions{Scenarios: noIDs})
	if f := flowOf(t, rep, observe.TransportUDPDNS, p); f.Scenario != "baseline/do53" || f.ScenarioBy != observe.JoinClientPort {
		t.Errorf("ports only: UDP flow from %d: %s by %s, want baseline/do53 by %s", p, f.Scenario, f.ScenarioBy, observe.JoinClientPort)
	}

	// The same capture under the old map (client port alone, first match
	// wins) puts the UDP query under the DoH case: the bug.
	var old []observe.ScenarioRule
	for _, r := range rules {
		old = append(old, observe.ScenarioRule{Scenario: r.Scenario, ClientPort: r.ClientPort, Start: r.Start, End: r.End})
	}
	rep = compareFile(t, writeCapture(t, l.rec), observe.CompareOptions{Scenarios: old})
	if f := flowOf(t, rep, observe.TransportUDPDNS, p); f.Scenario != "ech-shared/doh" {
		t.Errorf("old map: UDP flow joined %s; the test no longer shows the bug", f.Scenario)
	}
}

// TestScenarioJoinClientRandom: a case's TLS connections leave from a
// port the servers logged during another case (port reuse). They join
// their own case by ClientHello random: the ECH one by its inner random
// (what crypto/tls logs when ECH is accepted) once the key opens it, the
// plain one by its only random. Without the key the ECH flow's inner
// random is unknown and the port rule takes it.
func TestScenarioJoinClientRandom(t *testing.T) {
	l := newJoinLab(t)
	p := freePort(t)
	first := caseAt(Case{Scenario: "baseline", Transport: DNSDoH, Repeat: 1}, func(*caseRecord) {
		l.log(FileServer, "tcp", p)
	})
	second := caseAt(Case{Scenario: "ech-shared", Transport: DNSDoH, Repeat: 1}, func(rec *caseRecord) {
		l.dialFrom(t, p, l.tls.Client("secret.lab.test", true, "h2"), rec)
		l.dialFrom(t, 0, l.tls.Client("plain.lab.test", false, "h2"), rec)
	})
	if len(second.ClientRandoms) != 2 {
		t.Fatalf("the case recorded %d randoms, want 2", len(second.ClientRandoms))
	}
	// Both windows cover every flow: only the random can tell them apart.
	first.End = second.End
	rep, _ := l.compare(t, []CaseResult{first, second}, ech.KeyList{l.tls.Key})
	if len(rep.Flows) != 2 {
		t.Fatalf("%d flows, want 2", len(rep.Flows))
	}
	for _, f := range rep.Flows {
		if f.Scenario != "ech-shared/doh" || f.ScenarioBy != observe.JoinClientRandom {
			t.Errorf("flow from %v (ECH %s): %s by %s, want ech-shared/doh by %s", f.Client, f.ECH, f.Scenario, f.ScenarioBy, observe.JoinClientRandom)
		}
	}
	if f := flowOf(t, rep, observe.TransportTCP, p); f.ECH != observe.ECHReal {
		t.Errorf("flow from %d: ECH %q, want the ECH connection", p, f.ECH)
	}

	rules := readRules(t, l.dir)
	rep = compareFile(t, writeCapture(t, l.rec), observe.CompareOptions{Scenarios: rules})
	if f := flowOf(t, rep, observe.TransportTCP, p); f.Scenario != "baseline/doh" || f.ScenarioBy != observe.JoinClientPort {
		t.Errorf("without keys, ECH flow from %d: %s by %s, want the port rule", p, f.Scenario, f.ScenarioBy)
	}
}

// TestReadScenarioMapKeys: lines whose keys cannot join anything exactly are
// refused with the line number.
func TestReadScenarioMapKeys(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{`{"scenario":"x","proto":"sctp","client_port":1}`, `line 2: proto "sctp": want tcp or udp`},
		{`{"scenario":"x","client_randoms":["abcd"]}`, `line 2: client random "abcd" is not 32 bytes of hex`},
		{`{"client_port":1}`, "line 2: scenario is empty"},
		{`{"scenario":"x","dns_ids":[70000]}`, "line 2: json: cannot unmarshal"},
	} {
		_, err := observe.ReadScenarioMap(strings.NewReader("{\"scenario\":\"ok\"}\n" + tc.line + "\n"))
		if !errors.Is(err, observe.ErrScenarioMap) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want %q", tc.line, err, tc.want)
		}
	}
	rules, err := observe.ReadScenarioMap(strings.NewReader(`{"scenario":"x","client_randoms":["` + strings.Repeat("AB", 32) + `"]}`))
	if err != nil || rules[0].ClientRandoms[0] != strings.Repeat("ab", 32) {
		t.Errorf("upper-case random: %v %v", rules, err)
	}
}
