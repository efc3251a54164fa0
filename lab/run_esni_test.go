package lab

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/echlab/echlab/lab/observe"
)

// TestRunESNI runs baseline, esni, ech-shared and ech-hide-alpn over DoH
// and checks what the observer learned: baseline leaks the name in SNI and
// the ALPN; ESNI hides the name (only the ESNI keys recover it) but leaves
// ALPN in the clear; ech-shared hides the name while Go's crypto/tls
// repeats the ALPN in the outer ClientHello; ech-hide-alpn hides both.
func TestRunESNI(t *testing.T) {
	out := t.TempDir()
	res, _ := runAll(t, RunConfig{OutDir: out, Capture: CaptureSynth,
		Scenarios: []string{"baseline", "esni", "ech-shared", ScenarioHideALPN}, Transports: []string{DNSDoH}}, 4)
	if d := res.Cases[1].Detail; !strings.Contains(d, esniNote) || !strings.Contains(d, "ServerHello (TLS 1.3") {
		t.Errorf("esni case detail %q", d)
	}
	rows := readSummary(t, out)
	base, esni, shared := rows["baseline/doh"], rows["esni/doh"], rows["ech-shared/doh"]
	if !slices.Equal(base.SNI, []string{SecretName}) || !slices.Equal(base.Leaked, []string{SecretName}) ||
		!slices.Contains(base.ALPN, "h2") {
		t.Errorf("baseline: SNI %v leaked %v ALPN %v, want the name in the clear SNI and ALPN in the clear", base.SNI, base.Leaked, base.ALPN)
	}
	if len(esni.SNI) != 0 || len(esni.Leaked) != 0 || !slices.Equal(esni.ECH, []string{observe.ECHESNI}) ||
		!slices.Equal(esni.InnerSNI, []string{SecretName}) || !slices.Equal(esni.ALPN, []string{"h2"}) {
		t.Errorf("esni: SNI %v leaked %v ECH %v inner %v ALPN %v", esni.SNI, esni.Leaked, esni.ECH, esni.InnerSNI, esni.ALPN)
	}
	if !strings.Contains(esni.Verdict, "no name") || !strings.Contains(esni.Verdict, "not the ALPN (h2)") {
		t.Errorf("esni verdict %q", esni.Verdict)
	}
	if !slices.Equal(shared.SNI, []string{PublicName}) || len(shared.Leaked) != 0 || shared.Accepted != "yes" ||
		!slices.Equal(shared.InnerSNI, []string{SecretName}) {
		t.Errorf("ech-shared: SNI %v leaked %v accepted %q inner %v", shared.SNI, shared.Leaked, shared.Accepted, shared.InnerSNI)
	}
	if !slices.Contains(shared.ALPN, "h2") || !strings.Contains(shared.Verdict, "Go's crypto/tls copies it into the outer ClientHello") {
		t.Errorf("ech-shared: ALPN %v verdict %q, want the ALPN in the clear, said so", shared.ALPN, shared.Verdict)
	}
	checkHideALPNRow(t, rows[ScenarioHideALPN+"/doh"])
	checkESNIFlows(t, res.Report)
	checkHideALPNFlows(t, out, res.Report)
	b, err := os.ReadFile(filepath.Join(out, FileQueries))
	if err != nil || !bytes.Contains(b, []byte("_esni.secret.lab.test.")) {
		t.Errorf("the resolver's query log has no _esni TXT query (%v)", err)
	}
	md, err := os.ReadFile(filepath.Join(out, FileReport))
	if err != nil || !bytes.Contains(md, []byte("| esni/doh |")) || !bytes.Contains(md, []byte("ALPN in clear")) {
		t.Errorf("report.md lacks the esni row or the ALPN column (%v)", err)
	}
}

// checkESNIFlows checks the flows to the HTTPS servers: the ESNI
// ClientHello shows ALPN h2 in the clear and no name; the ECH one
// carries its ALPN inside the encrypted inner ClientHello.
func checkESNIFlows(t *testing.T, rep *observe.Report) {
	t.Helper()
	var sawESNI, sawECH bool
	for _, f := range rep.Flows {
		switch {
		case f.Scenario == "esni/doh" && f.ESNI:
			sawESNI = true
			if f.SNI != "" || f.InnerSNI != SecretName || !f.ESNIDecrypted || !slices.Equal(f.ALPN, []string{"h2"}) {
				t.Errorf("esni flow: SNI %q inner %q ALPN %v", f.SNI, f.InnerSNI, f.ALPN)
			}
		case f.Scenario == "ech-shared/doh" && f.ECH == observe.ECHReal:
			sawECH = true
			if f.SNI != PublicName || f.InnerSNI != SecretName || len(f.InnerALPN) == 0 {
				t.Errorf("ech flow: SNI %q inner %q inner ALPN %v", f.SNI, f.InnerSNI, f.InnerALPN)
			}
		}
	}
	if !sawESNI || !sawECH {
		t.Errorf("flows: esni %v, ech %v", sawESNI, sawECH)
	}
	for _, s := range rep.Summary {
		// The scenario's flows include the DoH connection (h2, http/1.1).
		if s.Scenario == "esni/doh" && (s.ESNIFlows != 1 || s.ECHFlows != 0 || !slices.Contains(s.ALPN, "h2")) {
			t.Errorf("esni summary %+v", s)
		}
	}
}
