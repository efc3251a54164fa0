package interop

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/internal/pki"
	"github.com/echlab/echlab/lab/observe"
)

// TestCaptureCompare drives the capture and compare path of Run without a
// browser: as root it re-runs itself in a fresh network namespace, captures
// lo live while Go's crypto/tls plays the ech and retry cases and a
// GREASE-like hello (an ECH config for plain.lab.test whose key nobody
// holds), then checks the observer's view of each flow, and that each
// server flow was joined to its case by a ClientHello random of the case's
// keylog, even when every case's window covers every flow.
func TestCaptureCompare(t *testing.T) {
	if !InNetns() {
		if os.Geteuid() != 0 {
			t.Skip("needs root for a network namespace and a packet socket")
		}
		if err := Reexec([]string{"-test.run=^TestCaptureCompare$", "-test.v"}); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err := Isolate(); err != nil {
		t.Fatal(err)
	}
	l := startTestLab(t)
	capt, err := l.StartCapture("lo")
	if err != nil {
		t.Fatal(err)
	}
	defer capt.Stop()
	ca, err := pki.LoadPool(l.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", l.Port)
	var keylog bytes.Buffer // the case's SSLKEYLOGFILE
	dial := func(name string, list []byte) (*tls.Conn, error) {
		return tls.Dial("tcp", addr, &tls.Config{ServerName: name, RootCAs: ca, EncryptedClientHelloConfigList: list,
			NextProtos: []string{"h2"}, KeyLogWriter: &keylog})
	}
	rep := &Report{}
	// No wait after a case: Observe settles the records with the capture.
	play := func(c Case, do func()) {
		keylog.Reset()
		mark, start := l.Log.Mark(), time.Now()
		do()
		kl, err := observe.ParseKeylog(bytes.NewReader(keylog.Bytes()))
		if err != nil || len(kl.Randoms) == 0 {
			t.Fatalf("%s: keylog: %v, %d randoms", c.Name, err, len(kl.Randoms))
		}
		recs := l.Log.Since(mark)
		rep.Results = append(rep.Results, Result{Browser: "go", Case: c.Name, Verdict: l.judge(c, recs),
			Connections: recs, ClientRandoms: slices.Sorted(maps.Keys(kl.Randoms)), Start: start, End: time.Now()})
	}
	play(Cases[0], func() {
		current, _ := publishedECH(t, l, SecretName)
		c, err := dial(SecretName, current)
		if err != nil || !c.ConnectionState().ECHAccepted {
			t.Fatalf("ech: %v (accepted %v)", err, err == nil && c.ConnectionState().ECHAccepted)
		}
		c.Close()
	})
	unheld := uint8(0)
	for unheld == l.StaleID || unheld == l.CurrentID {
		unheld++
	}
	play(Cases[1], func() {
		k, err := ech.GenerateKey(ech.KeyOptions{PublicName: PlainName, ConfigID: unheld})
		if err != nil {
			t.Fatal(err)
		}
		ks := &ech.KeySet{}
		ks.Add(k, true)
		list, err := ks.ConfigList()
		if err != nil {
			t.Fatal(err)
		}
		// The server cannot open it: crypto/tls then sees a rejection.
		if _, err := dial(PlainName, list); !errors.As(err, new(*tls.ECHRejectionError)) {
			t.Fatalf("unheld config: %v, want an ECHRejectionError", err)
		}
	})
	play(Cases[2], func() {
		stale, _ := publishedECH(t, l, StaleName)
		_, err := dial(StaleName, stale)
		var rej *tls.ECHRejectionError
		if !errors.As(err, &rej) {
			t.Fatalf("stale: %v, want an ECHRejectionError", err)
		}
		c, err := dial(StaleName, rej.RetryConfigList)
		if err != nil {
			t.Fatalf("retry: %v", err)
		}
		c.Close()
	})
	if err := l.Observe(rep, capt); err != nil {
		t.Fatal(err)
	}
	var table strings.Builder
	rep.Table(&table) //nolint:errcheck // strings.Builder
	t.Log("\n" + table.String())
	for _, r := range rep.Results {
		for _, f := range r.Observed.Flows {
			if f.JoinedBy != observe.JoinClientRandom {
				t.Errorf("%s: flow %d from %s joined by %q, want %s", r.Case, f.ID, f.Client, f.JoinedBy, observe.JoinClientRandom)
			}
		}
	}
	// (The test's own DoH lookups have no keylog: a window joins them,
	// and compare.md says so.)
	// Every window covers every flow: only the randoms tell the cases
	// apart.
	ws := windows(rep)
	for i := range ws {
		ws[i].Start, ws[i].End = ws[0].Start, ws[len(ws)-1].End
	}
	joined, err := l.CompareCapture(capt.Path, ws)
	if err != nil {
		t.Fatal(err)
	}
	perCase := map[string]int{}
	for _, f := range joined.Flows {
		if int(f.Server.Port()) != l.Port {
			continue
		}
		perCase[f.Scenario]++
		if f.ScenarioBy != observe.JoinClientRandom {
			t.Errorf("flow %d from %v: %s by %q, want by %s", f.ID, f.Client, f.Scenario, f.ScenarioBy, observe.JoinClientRandom)
		}
	}
	if perCase["go/ech"] != 1 || perCase["go/grease"] != 1 || perCase["go/retry"] != 2 {
		t.Errorf("server flows per case %v, want go/ech 1, go/grease 1, go/retry 2", perCase)
	}
	// Without keylogs, the server's log joins them by protocol and client
	// port.
	ws = windows(rep)
	for i := range ws {
		ws[i].Randoms = nil
	}
	if joined, err = l.CompareCapture(capt.Path, ws); err != nil {
		t.Fatal(err)
	}
	for _, f := range joined.Flows {
		if int(f.Server.Port()) == l.Port && f.ScenarioBy != observe.JoinClientPort {
			t.Errorf("without keylogs, flow %d from %v: %s by %q, want by %s", f.ID, f.Client, f.Scenario, f.ScenarioBy, observe.JoinClientPort)
		}
	}

	echRes, greaseRes, retryRes := rep.Results[0], rep.Results[1], rep.Results[2]
	if echRes.Outcome != Pass || !echRes.Observed.Agrees() || retryRes.Outcome != Pass || !retryRes.Observed.Agrees() {
		t.Errorf("ech %s %v, retry %s %v: want both to pass with the capture agreeing", echRes.Outcome,
			echRes.Observed.Disagreements, retryRes.Outcome, retryRes.Observed.Disagreements)
	}
	d := echRes.Observed.Decider()
	if d == nil || d.SNI != PublicName || d.ECH != observe.ECHReal || d.InnerSNI != SecretName || d.Accepted == nil || !*d.Accepted ||
		!strings.HasPrefix(d.JA4, "t13d") || d.ClientHelloLen < 200 {
		t.Errorf("ech: observed %+v", d)
	}
	if n := len(retryRes.Observed.Flows); n != 2 {
		t.Errorf("retry: %d observed flows, want 2", n)
	}
	g := greaseRes.Observed.Flows
	if len(g) != 1 || g[0].SNI != PlainName || g[0].ECH != observe.ECHGreaseOrKey || g[0].ConfigID == nil || *g[0].ConfigID != unheld ||
		g[0].InnerSNI != "" {
		t.Errorf("grease: observed %+v, want one flow with SNI %s and an unopened ECH extension, config id %d", g, PlainName, unheld)
	}
	// The retry case's flows do not make the ech case: the inner name differs.
	if dis := l.disagreements(Cases[0], retryRes.Verdict, retryRes.Observed); len(dis) == 0 {
		t.Error("the ech check agreed with the retry flows")
	}
	for _, f := range []string{CaptureFile, FlowsJSON, FlowsCSV, CompareMD} {
		if st, err := os.Stat(filepath.Join(l.Dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v (empty or missing)", f, err)
		}
	}
	md, _ := os.ReadFile(filepath.Join(l.Dir, CompareMD))
	for _, s := range []string{"go/ech", "go/retry", "go/grease"} {
		if !strings.Contains(string(md), s) {
			t.Errorf("%s does not name scenario %s", CompareMD, s)
		}
	}
}
