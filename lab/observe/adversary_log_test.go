package observe

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/echlab/echlab/lab/capture"
	"github.com/miekg/dns"
)

// decisionLine is one line of an adversary log in the format
// lab/adversary's Decision writes (with the grid's row and column first).
func decisionLine(row, column, policy, action, proto string, f *Flow, at time.Time, sni, qname, qtype, detail string) string {
	type flowJSON struct {
		Role    string `json:"role"`
		Proto   string `json:"proto"`
		Client  string `json:"client"`
		Relay   string `json:"relay"`
		Backend string `json:"backend"`
	}
	line := map[string]any{"row": row, "column": column, "time": at, "action": action,
		"flow": flowJSON{"https/shared", proto, f.Client.String(), f.Server.String(), "127.0.0.1:9"}}
	for k, v := range map[string]string{"policy": policy, "sni": sni, "qname": qname, "qtype": qtype, "detail": detail} {
		if v != "" {
			line[k] = v
		}
	}
	b, _ := json.Marshal(line)
	return string(b)
}

// recordAdversaryFlows records, on real loopback sockets, an ECH
// connection (SNI public.lab.test), a plain one (plain.lab.test), a Do53
// HTTPS question over UDP and an A question over TCP, and returns the
// capture and its flows by kind.
func recordAdversaryFlows(t *testing.T) (path string, byKind map[string]*Flow) {
	t.Helper()
	l := newLabTLS(t)
	rec := capture.NewRecorder()
	addr := serveTLS(t, rec, l.Server)
	dialTLS(t, addr, l.Client(SecretName, true, "h2"))
	dialTLS(t, addr, l.Client("plain.lab.test", false, "http/1.1"))
	udpAddr, tcpAddr := startDNS(t)
	exchange(t, rec, "udp", udpAddr, SecretName+".", dns.TypeHTTPS)
	exchange(t, rec, "tcp", tcpAddr, "other.lab.test.", dns.TypeA)
	path = writeCapture(t, rec)
	byKind = map[string]*Flow{}
	for _, f := range compareFile(t, path, CompareOptions{}).Flows {
		switch {
		case f.SNI == PublicName:
			byKind["ech"] = f
		case f.SNI == "plain.lab.test":
			byKind["plain"] = f
		case f.Transport == TransportUDPDNS:
			byKind["udp-dns"] = f
		case f.Transport == TransportTCPDNS:
			byKind["tcp-dns"] = f
		}
	}
	if len(byKind) != 4 {
		t.Fatalf("flows by kind: %v", byKind)
	}
	return path, byKind
}

// TestAdversaryLogJoin joins a decision log to a capture of real
// connections: each decision marks the flow of its client address, port
// and protocol (the strongest action when several do), and decisions
// with the wrong SNI, DNS question or time, or an unknown client, join
// nothing and are counted. Streaming gives the same marks and summary;
// without a log nothing changes.
func TestAdversaryLogJoin(t *testing.T) {
	path, k := recordAdversaryFlows(t)
	ech, plain, udp, tcp := k["ech"], k["plain"], k["udp-dns"], k["tcp-dns"]
	at := func(f *Flow) time.Time { return f.Start.Add(time.Millisecond) }
	nobody := &Flow{Client: netip.MustParseAddrPort("127.0.0.1:1"), Server: ech.Server}
	lines := []string{
		decisionLine("r1", "block-ech rst", "block-ech rst", "rst", "tcp", ech, at(ech), PublicName, "", "", "ClientHello carries encrypted_client_hello"),
		decisionLine("r1", "block-ech rst", "", "pass", "tcp", plain, at(plain), "plain.lab.test", "", "", ""),
		"",
		decisionLine("r1", "strip-ech", "", "pass", "udp", udp, at(udp), "", SecretName, "HTTPS", ""),
		decisionLine("r1", "strip-ech", "strip-ech", "rewrite", "udp", udp, at(udp), "", SecretName, "HTTPS", "removed ech from 1 HTTPS/SVCB RR"),
		decisionLine("r1", "strip-ech", "", "pass", "tcp", tcp, at(tcp), "", "other.lab.test", "A", ""),
		// Line 7 on: decisions that fit no flow.
		decisionLine("r1", "block-ech rst", "block-sni x rst", "rst", "tcp", plain, at(plain), "elsewhere.lab.test", "", "", ""),
		decisionLine("r1", "block-ech rst", "block-ech rst", "rst", "tcp", ech, ech.Start.Add(time.Hour), PublicName, "", "", ""),
		decisionLine("r1", "block-ech rst", "block-ech rst", "drop", "tcp", nobody, at(ech), PublicName, "", "", ""),
		decisionLine("r1", "strip-ech", "strip-ech", "rewrite", "udp", udp, at(udp), "", "nope.lab.test", "HTTPS", ""),
		decisionLine("r1", "strip-ech", "", "pass", "udp", tcp, at(tcp), "", "other.lab.test", "A", ""), // TCP flow, UDP decision
	}
	log, err := ReadAdversaryLog(strings.NewReader(strings.Join(lines, "\n")), "adversary.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	rep := compareFile(t, path, CompareOptions{Adversary: log})
	want := map[string][3]string{ // client → action, policy, column
		ech.Client.String():   {"rst", "block-ech rst", "block-ech rst"},
		plain.Client.String(): {"pass", "", "block-ech rst"},
		udp.Client.String():   {"rewrite", "strip-ech", "strip-ech"},
		tcp.Client.String():   {"pass", "", "strip-ech"},
	}
	for _, f := range rep.Flows {
		got := [3]string{f.AdversaryAction, f.AdversaryPolicy, f.AdversaryColumn}
		if got != want[f.Client.String()] || f.AdversaryRow != "r1" {
			t.Errorf("flow %d (%s %s): adversary %q row %q, want %q", f.ID, f.Transport, f.SNI, got, f.AdversaryRow, want[f.Client.String()])
		}
	}
	s := rep.Adversary
	if s == nil || s.Decisions != 10 || s.Joined != 5 || s.Unmatched != 5 || !slices.Equal(s.UnmatchedLines, []int{7, 8, 9, 10, 11}) {
		t.Fatalf("summary: %+v", s)
	}
	if len(s.Acted) != 2 || s.Acted[0].Action != "rst" || s.Acted[0].Name != PublicName ||
		s.Acted[1].Action != "rewrite" || s.Acted[1].Name != SecretName+" HTTPS" || s.Acted[1].Detail != "removed ech from 1 HTTPS/SVCB RR" {
		t.Errorf("acted: %+v", s.Acted)
	}
	wantCounts := []AdversaryCount{
		{"block-ech rst", "block-ech rst", "rst", 2, 1}, {"block-ech rst", "", "pass", 1, 1}, {"strip-ech", "", "pass", 3, 1},
		{"strip-ech", "strip-ech", "rewrite", 2, 1}, {"block-ech rst", "block-sni x rst", "rst", 1, 0}, {"block-ech rst", "block-ech rst", "drop", 1, 0},
	}
	if !slices.Equal(s.Counts, wantCounts) {
		t.Errorf("counts:\n got %+v\nwant %+v", s.Counts, wantCounts)
	}

	var md bytes.Buffer
	if err := WriteMarkdown(&md, rep); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"## What the adversary did", "| block-ech rst | block-ech rst | rst | 2 | 1 |",
		fmt.Sprintf("| %d | r1 | block-ech rst | block-ech rst | rst | tcp | public.lab.test |", s.Acted[0].Flow),
		"**warning: 5 decisions matched no flow in the capture (adversary.jsonl lines 7, 8, 9, 10, 11)"} {
		if !strings.Contains(md.String(), w) {
			t.Errorf("Markdown lacks %q:\n%s", w, md.String())
		}
	}
	var text bytes.Buffer
	if err := WriteTable(&text, rep); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "what the adversary did (adversary.jsonl: 10 decisions, 5 joined to flows)") ||
		!strings.Contains(text.String(), "warning: 5 decisions matched no flow") {
		t.Errorf("table:\n%s", text.String())
	}
	checkAdversaryCSV(t, rep, want)

	// Streaming joins the same way.
	var streamed []*Flow
	srep := compareFile(t, path, CompareOptions{Adversary: log, OnFlow: func(f *Flow) error { streamed = append(streamed, f); return nil }})
	for _, f := range streamed {
		if got := [3]string{f.AdversaryAction, f.AdversaryPolicy, f.AdversaryColumn}; got != want[f.Client.String()] {
			t.Errorf("streamed flow %d: %q", f.ID, got)
		}
	}
	if ss := srep.Adversary; ss == nil || !slices.Equal(ss.Counts, s.Counts) || ss.Unmatched != 5 || len(ss.Acted) != 2 {
		t.Errorf("streamed summary: %+v", ss)
	}

	// Without a log, nothing of it in the outputs.
	plainRep := compareFile(t, path, CompareOptions{})
	var js, md2 bytes.Buffer
	WriteJSON(&js, plainRep)
	WriteMarkdown(&md2, plainRep)
	if plainRep.Adversary != nil || strings.Contains(js.String(), "adversary") || strings.Contains(md2.String(), AdversaryHeading) {
		t.Errorf("without a log: %+v\n%s", plainRep.Adversary, js.String())
	}
}

// checkAdversaryCSV checks the CSV's adversary columns against want.
func checkAdversaryCSV(t *testing.T, rep *Report, want map[string][3]string) {
	t.Helper()
	var b bytes.Buffer
	if err := WriteCSV(&b, rep); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil || len(rows) != len(rep.Flows)+1 {
		t.Fatalf("CSV: %v, %d rows", err, len(rows))
	}
	col := func(name string) int { return slices.Index(rows[0], name) }
	client, action, policy, column := col("client"), col("adversary_action"), col("adversary_policy"), col("adversary_column")
	if action < 0 || policy < 0 || column < 0 || col("adversary_row") < 0 || col("adversary_detail") < 0 {
		t.Fatalf("CSV header: %v", rows[0])
	}
	for _, r := range rows[1:] {
		if got := [3]string{r[action], r[policy], r[column]}; got != want[r[client]] {
			t.Errorf("CSV row of %s: %q, want %q", r[client], got, want[r[client]])
		}
	}
}

// TestReadAdversaryLogErrors: a malformed line is an *AdversaryLogError
// naming the file and the line.
func TestReadAdversaryLogErrors(t *testing.T) {
	good := `{"column":"none","time":"2026-01-02T03:04:05Z","action":"pass","flow":{"role":"dns/do53","proto":"udp","client":"127.0.0.1:5353","relay":"127.0.0.1:53","backend":"127.0.0.1:54"}}`
	for _, tc := range []struct{ name, line, want string }{
		{"not JSON", `{"action":"rst",`, "unexpected end of JSON"},
		{"an array", `[1,2]`, "cannot unmarshal array"},
		{"unknown action", strings.Replace(good, `"pass"`, `"block"`, 1), `action "block"`},
		{"no action", strings.Replace(good, `"action":"pass",`, "", 1), `action ""`},
		{"bad proto", strings.Replace(good, `"udp"`, `"sctp"`, 1), `flow.proto "sctp"`},
		{"no client", strings.Replace(good, `"client":"127.0.0.1:5353",`, "", 1), "flow.client: no client address"},
		{"bad client", strings.Replace(good, `127.0.0.1:5353`, `localhost:53`, 1), `ParseAddr("localhost")`},
		{"bad time", strings.Replace(good, `2026-01-02T03:04:05Z`, `yesterday`, 1), "yesterday"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadAdversaryLog(strings.NewReader(good+"\n\n"+tc.line+"\n"+good+"\n"), "adv.jsonl")
			var le *AdversaryLogError
			if !errors.Is(err, ErrAdversaryLog) || !errors.As(err, &le) || le.File != "adv.jsonl" || le.Line != 3 {
				t.Fatalf("error %v (%#v)", err, le)
			}
			if !strings.Contains(err.Error(), "adv.jsonl line 3: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want the file, the line and %q", err, tc.want)
			}
		})
	}
	log, err := ReadAdversaryLog(strings.NewReader(good+"\n\n"+good), "adv.jsonl")
	if err != nil || len(log.Decisions) != 2 || log.Decisions[1].Line != 3 || log.Decisions[0].Flow.Client.Port() != 5353 {
		t.Errorf("good log: %v %+v", err, log)
	}
}

// FuzzReadAdversaryLog: any bytes give a log or an error naming a line,
// never a panic; a log read is joined to a capture without one.
func FuzzReadAdversaryLog(f *testing.F) {
	f.Add([]byte(`{"column":"none","time":"2026-01-02T03:04:05Z","action":"rst","sni":"a","flow":{"proto":"tcp","client":"127.0.0.1:1"}}`))
	f.Add([]byte("{}\n[]\n\"x\"\n"))
	f.Add([]byte(`{"action":"rewrite","qname":"a.","flow":{"proto":"udp","client":"[::1]:53"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		log, err := ReadAdversaryLog(bytes.NewReader(b), "fuzz.jsonl")
		var le *AdversaryLogError
		if err != nil {
			if !errors.As(err, &le) && !strings.Contains(err.Error(), "reading adversary log") {
				t.Fatalf("error of no line: %v", err)
			}
			return
		}
		j := newAdvJoin(log)
		j.join(&Flow{Client: netip.MustParseAddrPort("127.0.0.1:1"), Transport: TransportTCP, SNI: "a", ClientHelloLen: 1})
		if s := j.result(); s.Joined+s.Unmatched != len(log.Decisions) {
			t.Fatalf("summary %+v of %d decisions", s, len(log.Decisions))
		}
	})
}
