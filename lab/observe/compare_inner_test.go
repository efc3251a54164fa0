package observe

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/internal/pki"
	"github.com/echlab/echlab/lab/capture"
	"github.com/echlab/echlab/server"
)

// splitHopCapture synthesizes what an observer on both hops of a split
// front sees: the client's ClientHelloOuter to the front (port 8443) and
// the ClientHelloInner the front forwards to its backend (port 9443).
func splitHopCapture(t *testing.T) (key *ech.Key, pcap []byte) {
	t.Helper()
	key, err := ech.GenerateKey(ech.KeyOptions{ConfigID: 9, PublicName: PublicName})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := goClientHello(SecretName, []string{"h2"})
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := ech.Seal(&key.Config, msg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if e := sealed.Inner.ECH; e == nil || e.Type != ech.ECHInner || sealed.Inner.ServerName != SecretName {
		t.Fatalf("the sealed inner hello has ECH %+v and SNI %q, want type inner and %s", e, sealed.Inner.ServerName, SecretName)
	}
	var buf bytes.Buffer
	conns := []capture.ScriptConn{
		{TCP: true, Client: mustAP("127.0.0.1:40000"), Server: mustAP("127.0.0.1:8443")},
		{TCP: true, Client: mustAP("127.0.0.1:40001"), Server: mustAP("127.0.0.1:9443")},
	}
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	events := []capture.ScriptEvent{
		{Kind: capture.EventOpen, Conn: 0},
		{Kind: capture.EventData, Conn: 0, FromClient: true, Data: sealed.Record},
		{Kind: capture.EventOpen, Conn: 1},
		{Kind: capture.EventData, Conn: 1, FromClient: true, Data: ech.MarshalRecords(sealed.Inner.Raw)},
		{Kind: capture.EventClose, Conn: 1, FromClient: true},
		{Kind: capture.EventClose, Conn: 0, FromClient: true},
	}
	for i := range events {
		events[i].TS = t0.Add(time.Duration(i) * time.Millisecond)
	}
	if err := capture.WriteScript(&buf, conns, events); err != nil {
		t.Fatal(err)
	}
	return key, buf.Bytes()
}

// TestCompareInnerInClear reads a ClientHelloInner sent in plaintext (the
// split front's hop to its backend): the flow is marked, the privacy
// summary counts the true name as read in the clear, and every output
// format says so.
func TestCompareInnerInClear(t *testing.T) {
	key, capture := splitHopCapture(t)
	rules := []ScenarioRule{{Scenario: "ech-split"}}
	for _, keys := range []ech.KeySource{nil, ech.KeyList{key}} {
		rep, err := Compare(bytes.NewReader(capture), CompareOptions{Keys: keys, Scenarios: rules})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Flows) != 2 {
			t.Fatalf("%d flows, want 2", len(rep.Flows))
		}
		outer, hop := rep.Flows[0], rep.Flows[1]
		wantOuter := map[bool]string{false: ECHOuter, true: ECHReal}[keys != nil]
		if outer.ECH != wantOuter || outer.ECHInnerInClear || outer.SNI != PublicName {
			t.Errorf("keys %v: client→front flow: ECH %q in clear %v SNI %q, want %s and %s", keys != nil, outer.ECH, outer.ECHInnerInClear, outer.SNI, wantOuter, PublicName)
		}
		if hop.ECH != ECHInnerClear || !hop.ECHInnerInClear || hop.SNI != SecretName || !slices.Equal(hop.ALPN, []string{"h2"}) ||
			hop.ECHConfigID != nil || hop.InnerSNI != "" {
			t.Errorf("keys %v: front→backend flow: %+v, want ECH %q, ech_inner_in_clear and SNI %s", keys != nil, hop, ECHInnerClear, SecretName)
		}
		s := rep.Summary[0]
		if len(rep.Summary) != 1 || s.ECHFlows != 1 || s.InnerInClear != 1 || !hasName(s, SecretName, SourceInnerInClear) ||
			hasName(s, SecretName, SourceNothing) || hasName(s, SecretName, SourceSNI) || !hasName(s, PublicName, SourceSNI) {
			t.Errorf("keys %v: summary %+v, want 1 ECH flow, 1 inner in clear, %s learned from %s", keys != nil, rep.Summary, SecretName, SourceInnerInClear)
		}
		checkInnerInClearOutputs(t, rep)
	}
}

// checkInnerInClearOutputs checks that JSON, CSV, table and Markdown show
// the second flow as a ClientHelloInner in the clear.
func checkInnerInClearOutputs(t *testing.T, rep *Report) {
	t.Helper()
	var js bytes.Buffer
	if err := WriteJSON(&js, rep); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(js.String()), "\n")
	var hop map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &hop); err != nil || hop["ech"] != "inner" || hop["ech_inner_in_clear"] != true {
		t.Errorf("JSON line of the hop: %s (%v)", lines[len(lines)-1], err)
	}
	if strings.Contains(lines[0], "ech_inner_in_clear") {
		t.Errorf("JSON line of the outer flow mentions ech_inner_in_clear: %s", lines[0])
	}
	whole, _ := json.Marshal(rep) // flows.json
	if !bytes.Contains(whole, []byte(`"ech_inner_in_clear":1`)) {
		t.Errorf("report JSON has no summary count ech_inner_in_clear: %s", whole)
	}
	var cs bytes.Buffer
	if err := WriteCSV(&cs, rep); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&cs).ReadAll()
	col := slices.Index(csvHeader, "ech_inner_in_clear")
	if err != nil || len(rows) != 3 || col < 0 || rows[1][col] != "false" || rows[2][col] != "true" || rows[2][9] != "inner" {
		t.Errorf("CSV (column %d): %v %v", col, err, rows)
	}
	var tb, md bytes.Buffer
	if err := (TableOptions{Wide: true}).WriteTable(&tb, rep); err != nil {
		t.Fatal(err)
	}
	if err := WriteMarkdown(&md, rep); err != nil {
		t.Fatal(err)
	}
	note := "ech-split: 1 ClientHelloInner(s) sent in the clear (ECH type inner, a split front's hop to its backend): " +
		"the true name secret.lab.test is readable on that hop"
	for name, out := range map[string]string{"table": tb.String(), "markdown": md.String()} {
		for _, want := range []string{note, "inner (in clear)", SourceInnerInClear} {
			if !strings.Contains(out, want) {
				t.Errorf("%s lacks %q:\n%s", name, want, out)
			}
		}
	}
	if !strings.Contains(tb.String(), "\n! "+note+"\n") || !strings.Contains(md.String(), "\n- **"+note+"**\n") {
		t.Errorf("the note is not a line of its own under the summary:\n%s\n%s", tb.String(), md.String())
	}
}

// TestSplitHopInnerInClear runs a real split front with the observer's
// relay on both hops (client → front, front → backend) and reads the
// capture: the client's hop is real ECH, accepted; the backend hop is the
// ClientHelloInner in the clear with the true name.
//
// With a front secret (as the embedded lab and the docker stack wire it)
// the backend hop starts with the front's PROXY v2 header, which compare
// skips and reports.
func TestSplitHopInnerInClear(t *testing.T) {
	for _, secret := range [][]byte{nil, []byte("0123456789abcdef0123456789abcdef")} {
		t.Run(fmt.Sprintf("front-secret=%v", secret != nil), func(t *testing.T) { splitHopInnerInClear(t, secret) })
	}
}

func splitHopInnerInClear(t *testing.T, secret []byte) {
	ca, err := pki.NewCA("lab split hop CA")
	if err != nil {
		t.Fatal(err)
	}
	key, err := ech.GenerateKey(ech.KeyOptions{ConfigID: 2, PublicName: PublicName})
	if err != nil {
		t.Fatal(err)
	}
	ks := &ech.KeySet{}
	ks.Add(key, true)
	backend, err := server.Start(server.Config{Names: []string{SecretName}, PublicName: PublicName, CA: ca, Mode: "split-backend", FrontSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { backend.Close() })
	rec := capture.NewRecorder()
	obs := &capture.Observer{WrapConn: rec.WrapConn}
	t.Cleanup(func() { obs.Close() })
	backendHop, err := obs.RelayTCP("https/split-backend", backend.Addr())
	if err != nil {
		t.Fatal(err)
	}
	split, err := server.StartSplit(server.SplitConfig{Keys: ks, Routes: server.Routes{SecretName: backendHop}, PublicName: PublicName, CA: ca, FrontSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { split.Close() })
	front, err := obs.RelayTCP("https/split", split.Addr())
	if err != nil {
		t.Fatal(err)
	}
	list, err := ech.MarshalConfigList(key.Config.Raw)
	if err != nil {
		t.Fatal(err)
	}
	getVia(t, front, &tls.Config{ServerName: SecretName, RootCAs: ca.Pool(), MinVersion: tls.VersionTLS13, EncryptedClientHelloConfigList: list})
	if err := obs.Close(); err != nil {
		t.Fatal(err)
	}
	path := writeCapture(t, rec)
	rep := compareFile(t, path, CompareOptions{Keys: ech.KeyList{key}, Scenarios: []ScenarioRule{{Scenario: "ech-split"}}})
	var outer, hop *Flow
	for _, f := range rep.Flows {
		switch f.Server.String() {
		case front:
			outer = f
		case backendHop:
			hop = f
		}
	}
	if outer == nil || hop == nil {
		t.Fatalf("flows %+v: want one to the front %s and one to the backend hop %s", rep.Flows, front, backendHop)
	}
	if outer.ECH != ECHReal || outer.SNI != PublicName || outer.InnerSNI != SecretName || accepted(outer) != "yes" {
		t.Errorf("client→front: ECH %q SNI %q inner %q accepted %q", outer.ECH, outer.SNI, outer.InnerSNI, accepted(outer))
	}
	if hop.ECH != ECHInnerClear || !hop.ECHInnerInClear || hop.SNI != SecretName {
		t.Errorf("front→backend: ECH %q in clear %v SNI %q, want the inner hello in the clear (warnings %q)", hop.ECH, hop.ECHInnerInClear, hop.SNI, hop.Warnings)
	}
	if hop.ProxyHeader != (secret != nil) || outer.ProxyHeader {
		t.Errorf("PROXY v2 header seen on the backend hop %v, on the client hop %v; want %v, false", hop.ProxyHeader, outer.ProxyHeader, secret != nil)
	}
	if s := rep.Summary[0]; s.InnerInClear != 1 || !hasName(s, SecretName, SourceInnerInClear) || hasName(s, SecretName, SourceNothing) {
		t.Errorf("summary %+v", rep.Summary)
	}
}

// getVia makes one HTTPS request to addr and reads the answer.
func getVia(t *testing.T, addr string, cfg *tls.Config) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		}}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+SecretName+"/", nil)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatalf("GET through the split front: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.TLS == nil || !resp.TLS.ECHAccepted {
		t.Fatalf("GET through the split front: ECH not accepted (%v)", resp.Status)
	}
}
