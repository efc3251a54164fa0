package observe

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/lab/capture"
)

// TestKeylogAndScenarios records two connections whose client logs its
// secrets, then reads the capture with the keylog, the ECH key and a
// scenario map, and checks every report format.
func TestKeylogAndScenarios(t *testing.T) {
	l := newLabTLS(t)
	rec := capture.NewRecorder()
	addr := serveTLS(t, rec, l.Server)
	var keylog bytes.Buffer
	ec := l.Client("secret.lab.test", true, "h2")
	ec.KeyLogWriter = &keylog
	dialTLS(t, addr, ec)
	dialTLS(t, addr, l.Client("plain.lab.test", false, "h2"))
	path := writeCapture(t, rec)
	first := compareFile(t, path, CompareOptions{})
	rules, err := ReadScenarioMap(strings.NewReader(
		`{"scenario":"ech","client_port":` + itoa(first.Flows[0].Client.Port()) + "}\n\n" +
			`{"scenario":"baseline","server_port":` + itoa(first.Flows[1].Server.Port()) + "}\n"))
	if err != nil {
		t.Fatal(err)
	}
	kl, err := ReadKeylog(&keylog)
	if err != nil {
		t.Fatal(err)
	}
	rep := compareFile(t, path, CompareOptions{Keys: ech.KeyList{l.Key}, Keylog: kl, Scenarios: rules})
	e, p := rep.Flows[0], rep.Flows[1]
	if e.Scenario != "ech" || p.Scenario != "baseline" {
		t.Errorf("scenarios %q %q", e.Scenario, p.Scenario)
	}
	if !e.Keylog || p.Keylog {
		t.Errorf("keylog marks: ECH flow %v (logged), plain flow %v (not logged)", e.Keylog, p.Keylog)
	}
	sum := map[string]ScenarioSummary{}
	for _, s := range rep.Summary {
		sum[s.Scenario] = s
	}
	if s := sum["ech"]; s.ECHAccepted != 1 || !hasName(s, "public.lab.test", SourceSNI) || !hasName(s, "secret.lab.test", SourceNothing) {
		t.Errorf("ech summary %+v", s)
	}
	if s := sum["baseline"]; !hasName(s, "plain.lab.test", SourceSNI) {
		t.Errorf("baseline summary %+v", s)
	}

	var js bytes.Buffer
	if err := WriteJSON(&js, rep); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(js.String()), "\n")
	var back Flow
	if len(lines) != 2 || json.Unmarshal([]byte(lines[0]), &back) != nil || back.InnerSNI != "secret.lab.test" || back.Client != e.Client {
		t.Errorf("JSON lines: %d lines, first %s", len(lines), lines[0])
	}
	var cs bytes.Buffer
	if err := WriteCSV(&cs, rep); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&cs).ReadAll()
	if err != nil || len(rows) != 3 || len(rows[0]) != len(csvHeader) || rows[1][7] != "public.lab.test" || rows[1][15] != "secret.lab.test" {
		t.Errorf("CSV: %v %v", err, rows)
	}
	var md, tb bytes.Buffer
	if err := WriteMarkdown(&md, rep); err != nil {
		t.Fatal(err)
	}
	if err := WriteTable(&tb, rep); err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{"markdown": md.String(), "table": tb.String()} {
		for _, want := range []string{"public.lab.test", "secret.lab.test", "nothing", "synthesized"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s output lacks %q:\n%s", name, want, out)
			}
		}
	}
}

func TestReadScenarioMapErrors(t *testing.T) {
	for _, in := range []string{"{", `{"client_port":1}`, `{"scenario":"x","client_port":"a"}`} {
		if _, err := ReadScenarioMap(strings.NewReader(in)); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}

func hasName(s ScenarioSummary, name, source string) bool {
	for _, n := range s.Names {
		if n.Name == name && n.Source == source {
			return true
		}
	}
	return false
}

func itoa(p uint16) string { return strconv.Itoa(int(p)) }
