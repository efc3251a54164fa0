package conformance

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func id(v uint8) *uint8 { return &v }

// TestGradeRules feeds crafted evidence to the grader: each rule of an
// expectation can fail a cell, with the rule named.
func TestGradeRules(t *testing.T) {
	cases, err := SelectCases([]string{"unknown-version-then-good", "retry-stale", "alias-loop", "close-after-server-hello"})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Case{}
	for _, c := range cases {
		byName[c.Name] = c
	}
	real := func(n uint8) Hello { return Hello{SNI: PublicName, ECH: "real", ConfigID: id(n)} }
	tests := []struct {
		name, cas string
		ev        Evidence
		want      Grade
		why       string
	}{
		{"good", "unknown-version-then-good", Evidence{Hellos: []Hello{real(1)}, ECHAccepted: true}, Pass, "ech"},
		{"skipped config used", "unknown-version-then-good", Evidence{Hellos: []Hello{real(9), real(1)}, ECHAccepted: true, Retried: true}, Fail, "config id 9"},
		{"wrong first config", "unknown-version-then-good", Evidence{Hellos: []Hello{real(2)}, ECHAccepted: true}, Fail, "first ECH offer used config id 2"},
		{"retry loop", "retry-stale", Evidence{Hellos: []Hello{real(1), real(3), real(3)}, Error: "rejected"}, Fail, "3 ClientHellos"},
		{"outcome", "retry-stale", Evidence{Hellos: []Hello{real(1), real(3)}, ECHAccepted: true, Retried: true}, Fail, "outcome ech-retried"},
		{"clear name", "close-after-server-hello", Evidence{Hellos: []Hello{real(1), {SNI: SecretName}}, Error: "EOF"}, Fail, "cleartext SNI"},
		{"unbounded aliases", "alias-loop", Evidence{Queries: bytesQueries(40), Error: "loop"}, Fail, "40 HTTPS queries"},
		{"bounded aliases", "alias-loop", Evidence{Queries: bytesQueries(9), Error: "loop"}, Pass, "refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := tt.ev
			ev.Outcome = ev.outcome()
			cell := grade(byName[tt.cas], ClientEchlab, ev)
			if cell.Grade != tt.want || !strings.Contains(cell.Why, tt.why) {
				t.Fatalf("grade %s (%s), want %s with %q", cell.Grade, cell.Why, tt.want, tt.why)
			}
		})
	}
	if c := grade(byName["alias-loop"], ClientGo, Evidence{}); c.Grade != NA {
		t.Fatalf("a discovery case for the Go column: %s, want n.a.", c.Grade)
	}
}

func bytesQueries(n int) []Query {
	qs := make([]Query, n)
	for i := range qs {
		qs[i] = Query{Transport: "doh", Type: "HTTPS"}
	}
	return qs
}

func TestOutcome(t *testing.T) {
	tests := []struct {
		ev   Evidence
		want Outcome
	}{
		{Evidence{Error: "no config"}, OutcomeRefused},
		{Evidence{Hellos: []Hello{{SNI: SecretName}}}, OutcomeClear},
		{Evidence{Hellos: []Hello{{SNI: SecretName, ECH: "grease", ConfigID: id(77)}}, Error: "x"}, OutcomeGREASE},
		{Evidence{Hellos: []Hello{{SNI: PublicName, ECH: "real", ConfigID: id(1)}}, Error: "x"}, OutcomeFailed},
		{Evidence{ECHAccepted: true, Retried: true}, OutcomeECHRetried},
	}
	for _, tt := range tests {
		if got := tt.ev.outcome(); got != tt.want {
			t.Errorf("outcome of %+v = %s, want %s", tt.ev, got, tt.want)
		}
	}
}

// TestReport writes a real run's report in the three forms.
func TestReport(t *testing.T) {
	cases, err := SelectCases([]string{"baseline", "public-name-ip"})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(t.Context(), Options{Cases: cases, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	var tbl, md, js bytes.Buffer
	rep.WriteTable(&tbl)
	rep.WriteMarkdown(&md)
	rep.WriteJSON(&js)
	if !strings.Contains(tbl.String(), "public-name-ip  SHOULD  good    pass    fail") {
		t.Errorf("table:\n%s", tbl.String())
	}
	if !strings.Contains(md.String(), "| [baseline](#baseline) | MUST | good | pass | pass |") ||
		!strings.Contains(md.String(), "- **go: fail** — offered ECH with config id 11") {
		t.Errorf("markdown:\n%s", md.String())
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Cases) != 2 || back.Cases[1].Cells[1].Grade != Fail {
		t.Errorf("JSON does not read back: %v", err)
	}
	if f := rep.Failures(); len(f) != 1 || f[0] != "public-name-ip/go" {
		t.Errorf("Failures = %v", f)
	}
}
