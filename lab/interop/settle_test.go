package interop

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/echlab/echlab/lab/observe"
	"github.com/echlab/echlab/server"
)

// logRecord writes r to the lab's connection log as the server does.
func logRecord(t *testing.T, l *Lab, r server.ConnRecord) {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Log.Write(append(b, '\n')); err != nil {
		t.Fatal(err)
	}
}

// TestSettleRecords: a record the server wrote after its case ended (here
// logged during the next case) goes back to the case whose flow the
// capture joined by random, one written after the last case ended is
// waited for (woken by the write), and both cases are judged again: the
// ech case passes, the grease case no longer sees the ech connection.
func TestSettleRecords(t *testing.T) {
	l := &Lab{Port: 8443, DoHPort: 8053, Log: newConnLog(nopCloser{&bytes.Buffer{}})}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	id := uint8(7)
	l.CurrentID = id
	echRec := server.ConnRecord{Time: t0.Add(100 * time.Millisecond), Transport: server.TransportTCP, ClientAddr: "127.0.0.1:40001",
		OuterSNI: PublicName, InnerSNI: SecretName, ECH: server.ECHAccepted, ConfigID: &id, ALPN: "h2"}
	greaseID := uint8(200)
	greaseRec := server.ConnRecord{Time: t0.Add(2 * time.Second), Transport: server.TransportTCP, ClientAddr: "127.0.0.1:40002",
		OuterSNI: PlainName, ECH: server.ECHGrease, ConfigID: &greaseID, ALPN: "h2"}
	lateRec := server.ConnRecord{Time: t0.Add(2100 * time.Millisecond), Transport: server.TransportTCP, ClientAddr: "127.0.0.1:40003",
		OuterSNI: PlainName, ECH: server.ECHGrease, ConfigID: &greaseID, Error: "EOF"}
	// The ech case ended before its record came; the grease case logged
	// it with its own.
	logRecord(t, l, greaseRec)
	logRecord(t, l, echRec)
	rep := &Report{Results: []Result{
		{Browser: "go", Case: "ech", Start: t0, End: t0.Add(time.Second)},
		{Browser: "go", Case: "grease", Start: t0.Add(time.Second), End: t0.Add(3 * time.Second), Connections: l.Log.Since(0)},
	}}
	for i := range rep.Results {
		l.decide(&rep.Results[i])
	}
	if rep.Results[0].Outcome != Fail {
		t.Fatalf("ech without its record: %s, want fail (the test's premise)", rep.Results[0].Outcome)
	}
	flow := func(id int, scen, client string, start time.Time) *observe.Flow {
		return &observe.Flow{ID: id, Scenario: scen, ScenarioBy: observe.JoinClientRandom, Start: start, Transport: observe.TransportTCP,
			Client: netip.MustParseAddrPort(client), Server: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 8443)}
	}
	obs := &observe.Report{Flows: []*observe.Flow{
		flow(1, "go/ech", echRec.ClientAddr, echRec.Time),
		flow(2, "go/grease", greaseRec.ClientAddr, greaseRec.Time),
		flow(3, "go/grease", lateRec.ClientAddr, lateRec.Time),
	}}
	late, _ := json.Marshal(lateRec)
	go l.Log.Write(append(late, '\n')) // the server finishes the last connection after the run
	start := time.Now()
	if w := l.settleRecords(rep, obs, time.Minute); len(w) != 0 {
		t.Errorf("warnings %q", w)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("settleRecords took %v: not woken by the late record", d)
	}
	ech, grease := rep.Results[0], rep.Results[1]
	if len(ech.Connections) != 1 || ech.Connections[0].ClientAddr != echRec.ClientAddr || ech.Outcome != Pass || ech.InnerSNI != SecretName {
		t.Errorf("ech: %s (%s), records %+v; want pass on its own record", ech.Outcome, ech.Why, ech.Connections)
	}
	addrs := func(rs []server.ConnRecord) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.ClientAddr)
		}
		return out
	}
	if got := addrs(grease.Connections); !slices.Equal(got, []string{greaseRec.ClientAddr, lateRec.ClientAddr}) {
		t.Errorf("grease records from %v, want %s and %s", got, greaseRec.ClientAddr, lateRec.ClientAddr)
	}
	if grease.Outcome != Pass || !grease.Grease {
		t.Errorf("grease: %s (%s)", grease.Outcome, grease.Why)
	}

	// A flow whose record never comes: a warning once the bound passed.
	obs.Flows = append(obs.Flows, flow(4, "go/grease", "127.0.0.1:40004", t0.Add(2200*time.Millisecond)))
	w := l.settleRecords(rep, obs, 20*time.Millisecond)
	if len(w) != 1 || !strings.Contains(w[0], "flow 4") {
		t.Errorf("warnings %q, want one naming flow 4", w)
	}
}

// TestScenarioRulesSplitRandoms: a case's keylog randoms label server
// flows "BROWSER/CASE" and the DoH ones "BROWSER/CASE/doh"; the client
// port of a server record keeps its protocol; the windows come last.
func TestScenarioRulesSplitRandoms(t *testing.T) {
	l := &Lab{Port: 8443, DoHPort: 8053}
	srv, doh := strings.Repeat("ab", 32), strings.Repeat("cd", 32)
	ws := []Window{{Scenario: "chromium/h3", Randoms: []string{srv, doh}, Start: time.Unix(1, 0), End: time.Unix(2, 0),
		Clients: []ConnClient{{Transport: server.TransportQUIC, Addr: "127.0.0.1:5000"}}}}
	rules := l.ScenarioRules(ws, map[string]bool{doh: true})
	var lines []string
	for _, r := range rules {
		b, _ := json.Marshal(r)
		lines = append(lines, string(b))
	}
	// The rules are what echlab compare --scenarios reads.
	back, err := observe.ReadScenarioMap(strings.NewReader(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != 6 {
		t.Fatalf("%d rules, want 6:\n%s", len(back), strings.Join(lines, "\n"))
	}
	if r := back[0]; r.Scenario != "chromium/h3" || !slices.Equal(r.ClientRandoms, []string{srv}) {
		t.Errorf("rule 0 %+v, want the server random for chromium/h3", r)
	}
	if r := back[1]; r.Scenario != "chromium/h3/doh" || !slices.Equal(r.ClientRandoms, []string{doh}) {
		t.Errorf("rule 1 %+v, want the DoH random for chromium/h3/doh", r)
	}
	if r := back[2]; r.Proto != observe.ProtoUDP || r.ClientPort != 5000 || r.ServerPort != 8443 {
		t.Errorf("rule 2 %+v, want udp from port 5000 to 8443", r)
	}
	for _, r := range back[3:] {
		if r.Start.IsZero() || len(r.ClientRandoms) > 0 || r.ClientPort != 0 {
			t.Errorf("fallback rule %+v, want a window", r)
		}
	}
}

// TestKeylogFile: the keylog a browser run starts with is empty and 0600,
// and keylogRandoms reads the randoms of its lines (none for no file).
func TestKeylogFile(t *testing.T) {
	dir := t.TempDir()
	name, err := createKeylog(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(name)
	if err != nil || st.Mode().Perm() != 0o600 || st.Size() != 0 || filepath.Base(name) != KeylogFile {
		t.Fatalf("keylog %s: %v, mode %v", name, err, st.Mode())
	}
	a, b := strings.Repeat("AB", 32), strings.Repeat("01", 32)
	lines := "# comment\nCLIENT_HANDSHAKE_TRAFFIC_SECRET " + a + " 00ff\nCLIENT_TRAFFIC_SECRET_0 " + a + " 0102\n" +
		"CLIENT_RANDOM " + b + " 0a0b\nnot a line\n"
	if err := os.WriteFile(name, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := keylogRandoms(name)
	if err != nil || !slices.Equal(got, []string{b, strings.ToLower(a)}) {
		t.Errorf("keylogRandoms = %v, %v; want %s and %s", got, err, b, strings.ToLower(a))
	}
	if got, err := keylogRandoms(filepath.Join(dir, "none")); got != nil || err != nil {
		t.Errorf("keylogRandoms of no file = %v, %v", got, err)
	}
}
