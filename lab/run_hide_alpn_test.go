package lab

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/echlab/echlab/lab/observe"
)

// checkHideALPNRow checks the summary row of ech-hide-alpn over DoH: the
// observer saw only the public name and no ALPN at all; with keys, the
// inner name and ALPN h2, and the server's acceptance.
func checkHideALPNRow(t *testing.T, r Row) {
	t.Helper()
	if r.Cases != 1 || r.OK != 1 {
		t.Fatalf("%s: %d/%d ok: %s", ScenarioHideALPN, r.OK, r.Cases, r.Verdict)
	}
	if !slices.Equal(r.SNI, []string{PublicName}) || len(r.Leaked) != 0 || len(r.DNSNames) != 0 {
		t.Errorf("%s: SNI %v leaked %v DNS names %v, want only %s", ScenarioHideALPN, r.SNI, r.Leaked, r.DNSNames, PublicName)
	}
	if len(r.ALPN) != 0 || !slices.Equal(r.InnerALPN, []string{"h2"}) || !slices.Equal(r.HiddenALPN, []string{"h2"}) {
		t.Errorf("%s: ALPN in clear %v, inner %v, hidden %v; want none, h2, h2", ScenarioHideALPN, r.ALPN, r.InnerALPN, r.HiddenALPN)
	}
	if !slices.Equal(r.ECH, []string{observe.ECHReal}) || r.Accepted != "yes" || !slices.Equal(r.InnerSNI, []string{SecretName}) {
		t.Errorf("%s: ECH %v accepted %q inner %v", ScenarioHideALPN, r.ECH, r.Accepted, r.InnerSNI)
	}
	for _, n := range r.Names {
		if n.Name == SecretName && n.Source != observe.SourceNothing {
			t.Errorf("%s: the observer learned %s from %s", ScenarioHideALPN, n.Name, n.Source)
		}
	}
	if !strings.Contains(r.Verdict, "observer learned only "+PublicName) || !strings.Contains(r.Verdict, "ECH hid the ALPN too (h2") {
		t.Errorf("%s verdict %q", ScenarioHideALPN, r.Verdict)
	}
	// A real client's size, not an uncompressed ~3000 bytes.
	if r.ClientHelloBytes < 1000 || r.ClientHelloBytes > 2000 {
		t.Errorf("%s: ClientHelloOuter of %d bytes, want a compressed key_share (~1650)", ScenarioHideALPN, r.ClientHelloBytes)
	}
}

// checkHideALPNFlows checks the ech-hide-alpn flow as Compare read it
// with the keys, then compares the capture again without keys: the inner
// ALPN is then nowhere to be seen.
func checkHideALPNFlows(t *testing.T, out string, rep *observe.Report) {
	t.Helper()
	label := ScenarioHideALPN + "/doh"
	var port uint16
	for _, f := range rep.Flows {
		if f.Scenario != label || f.ECH != observe.ECHReal {
			continue
		}
		port = f.Server.Port()
		if f.SNI != PublicName || len(f.ALPN) != 0 || !slices.Equal(f.InnerALPN, []string{"h2"}) ||
			f.InnerSNI != SecretName || f.ECHAccepted == nil || !*f.ECHAccepted {
			t.Errorf("%s flow: SNI %q ALPN %v inner %q %v accepted %v", label, f.SNI, f.ALPN, f.InnerSNI, f.InnerALPN, f.ECHAccepted)
		}
	}
	if port == 0 {
		t.Fatalf("no real ECH flow labelled %s", label)
	}
	for _, sum := range rep.Summary {
		switch {
		case sum.Scenario == label && !slices.Equal(sum.HiddenALPN, []string{"h2"}):
			t.Errorf("%s privacy summary: hidden ALPN %v, want h2", label, sum.HiddenALPN)
		case sum.Scenario == "ech-shared/doh" && len(sum.HiddenALPN) != 0:
			t.Errorf("ech-shared/doh privacy summary: hidden ALPN %v, but crypto/tls repeats it in the outer", sum.HiddenALPN)
		}
	}
	rules := readRules(t, out)
	f, err := os.Open(filepath.Join(out, FileCapture))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	blind, err := observe.Compare(f, observe.CompareOptions{Scenarios: rules})
	if err != nil {
		t.Fatal(err)
	}
	var seen int
	for _, fl := range blind.Flows {
		if fl.Scenario != label || fl.Server.Port() != port {
			continue
		}
		seen++
		if fl.ECH != observe.ECHOuter || fl.SNI != PublicName || len(fl.ALPN) != 0 || fl.InnerSNI != "" || len(fl.InnerALPN) != 0 {
			t.Errorf("without keys, %s flow: ECH %q SNI %q ALPN %v inner %q %v", label, fl.ECH, fl.SNI, fl.ALPN, fl.InnerSNI, fl.InnerALPN)
		}
	}
	if seen != 1 {
		t.Errorf("without keys, %d flows of %s to the shared server, want 1", seen, label)
	}
}

// readRules reads the run's scenario map.
func readRules(t *testing.T, out string) []observe.ScenarioRule {
	t.Helper()
	f, err := os.Open(filepath.Join(out, FileScenarios))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rules, err := observe.ReadScenarioMap(f)
	if err != nil {
		t.Fatal(err)
	}
	return rules
}
