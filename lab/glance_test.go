package lab

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/echlab/echlab/client"
	"github.com/echlab/echlab/lab/observe"
)

// TestGlanceRealRun runs the lab (synth capture: time-window labels, no
// port reuse across cases) with repeats and padding-sweep, and reads the
// terminal tables of run and compare, default and wide.
func TestGlanceRealRun(t *testing.T) {
	out := t.TempDir()
	res, _ := runAll(t, RunConfig{OutDir: out, Capture: CaptureSynth, Repeat: 2,
		Scenarios: []string{"baseline", "ech-shared", "stale-retry", "padding-sweep"}, Transports: []string{DNSDoH}},
		2*(3+2*len(SweepNames())))
	var glance, wide, table, wideTable bytes.Buffer
	if err := WriteGlance(&glance, res.Rows, res.Capture); err != nil {
		t.Fatal(err)
	}
	TableOptions{Wide: true}.WriteGlance(&wide, res.Rows, res.Capture)  //nolint:errcheck // a buffer
	observe.WriteTable(&table, res.Report)                              //nolint:errcheck // a buffer
	observe.TableOptions{Wide: true}.WriteTable(&wideTable, res.Report) //nolint:errcheck // a buffer
	checkWidth(t, "run table", glance.String(), observe.DefaultTableWidth)
	checkWidth(t, "compare table", table.String(), observe.DefaultTableWidth)
	if widest(wide.String()) <= observe.DefaultTableWidth || widest(wideTable.String()) <= observe.DefaultTableWidth {
		t.Errorf("--wide tables are %d and %d runes wide, want every column (wider than %d)",
			widest(wide.String()), widest(wideTable.String()), observe.DefaultTableWidth)
	}
	for _, want := range []string{"OBSERVER SAW SNI", "NAME IN DNS?", "INNER (WITH KEYS)", "HANDSHAKE MS"} {
		if !strings.Contains(wide.String(), want) {
			t.Errorf("wide run table lacks %q", want)
		}
	}
	for _, want := range []string{"CLIENT", "JA4", "kdf=0x0001", "TLS_AES_128_GCM_SHA256"} {
		if !strings.Contains(wideTable.String(), want) {
			t.Errorf("wide compare table lacks %q", want)
		}
	}
	checkLegend(t, glance.String(), glanceTableHead(TableOptions{}))
	checkLegend(t, table.String(), []string{"SVC", "SNI / DNS Q", "ECH", "ACC", "CH B", "ALPN", "N"})

	rows := map[string]Row{}
	for _, r := range res.Rows {
		rows[r.Scenario] = r
	}
	// Repeats: one row per scenario, counts and medians.
	shared, stale := rows["ech-shared"], rows["stale-retry"]
	if shared.Cases != 2 || shared.AcceptedFlows != 2 || shared.VerifiedFlows != 2 || shared.HandshakeN != 2 || shared.Accepted != "yes" {
		t.Errorf("ech-shared ×2: %+v", shared)
	}
	if stale.Accepted != "no→yes" || stale.AcceptedFlows != 2 || stale.VerifiedFlows != 4 {
		t.Errorf("stale-retry ×2: accepted %q, %d/%d flows", stale.Accepted, stale.AcceptedFlows, stale.VerifiedFlows)
	}
	if line := glanceLine(glance.String(), "ech-shared"); !strings.Contains(line, " 2/2 ") || strings.Contains(line, "→") {
		t.Errorf("ech-shared line: %q", line)
	}
	if strings.Contains(glance.String(), "→yes→") || strings.Contains(wide.String(), "→yes→") {
		t.Errorf("repeats concatenated:\n%s", wide.String())
	}
	// Marks.
	for scen, mark := range map[string]string{"baseline": MarkLeakExpected, "ech-shared": MarkPass,
		"padding-sweep-none": MarkPass, "padding-sweep-default": MarkPass} {
		if !strings.HasPrefix(glanceLine(glance.String(), scen), mark+" ") ||
			!strings.Contains(glance.String(), "\n"+mark+" "+scen+" over doh: ") {
			t.Errorf("%s: want mark %s on its row and verdict:\n%s", scen, mark, glance.String())
		}
	}
	checkSweepSizes(t, rows, glance.String())
	// Notes shared by verdicts: once, as footnotes.
	note := "[1] ALPN in clear (h2, http/1.1): Go's crypto/tls copies it into the outer ClientHello"
	if strings.Count(glance.String(), "ALPN in clear (h2, http/1.1): Go's") != 1 || !strings.Contains(glance.String(), "\n"+note+"\n") ||
		!strings.Contains(glance.String(), "observer learned only public.lab.test [1]\n") {
		t.Errorf("footnote %q not printed once:\n%s", note, glance.String())
	}
	// report.md keeps the default table, legend and verdicts.
	md, err := os.ReadFile(filepath.Join(out, FileReport))
	if err != nil {
		t.Fatal(err)
	}
	block := strings.SplitN(strings.SplitN(string(md), "```\n", 2)[1], "```", 2)[0]
	checkWidth(t, "report.md glance", block, observe.DefaultTableWidth)
	if !strings.Contains(block, glanceLegend[0].text) {
		t.Errorf("report.md glance lacks the legend:\n%s", block)
	}
}

// checkSweepSizes: without padding the ClientHello grows with the inner
// name's length, with the default policy it does not; the table shows
// each length's sizes.
func checkSweepSizes(t *testing.T, rows map[string]Row, glance string) {
	t.Helper()
	none, padded := rows["padding-sweep-none"], rows["padding-sweep-default"]
	if len(none.Sizes) != len(SweepNames()) || len(padded.Sizes) != len(SweepNames()) {
		t.Fatalf("sweep sizes: %d and %d lengths, want %d", len(none.Sizes), len(padded.Sizes), len(SweepNames()))
	}
	var lengths, noneCH, paddedCH []string
	for i, s := range none.Sizes {
		if s.NameLength != 5*(i+1) || s.Flows != 2 {
			t.Errorf("size %d: %+v", i, s)
		}
		if i > 0 && s.ClientHelloBytes-none.Sizes[i-1].ClientHelloBytes != 5 {
			t.Errorf("padding off: %d → %d bytes for 5 more characters", none.Sizes[i-1].ClientHelloBytes, s.ClientHelloBytes)
		}
		if padded.Sizes[i].ClientHelloBytes != padded.Sizes[0].ClientHelloBytes {
			t.Errorf("padding on: length %d gives %d bytes, length 5 %d", s.NameLength, padded.Sizes[i].ClientHelloBytes, padded.Sizes[0].ClientHelloBytes)
		}
		lengths = append(lengths, fmt.Sprint(s.NameLength))
		noneCH = append(noneCH, fmt.Sprint(s.ClientHelloBytes))
		paddedCH = append(paddedCH, fmt.Sprint(padded.Sizes[i].ClientHelloBytes))
	}
	fields := func(after, label string) []string {
		i := strings.Index(glance, after)
		if i < 0 {
			t.Fatalf("no %q block:\n%s", after, glance)
		}
		for _, l := range strings.Split(glance[i:], "\n") {
			if rest, ok := strings.CutPrefix(strings.TrimSpace(l), label+" "); ok {
				return strings.Fields(rest)
			}
		}
		return nil
	}
	head := "padding-sweep-none over doh: sizes by inner name length"
	if got := fields(head, "NAME LENGTH"); !slices.Equal(got, lengths) {
		t.Errorf("name lengths %v, want %v", got, lengths)
	}
	if got := fields(head, "ECH PAYLOAD"); len(got) != len(lengths) {
		t.Errorf("ECH payload sizes %v", got)
	}
	if got := fields(head, "CLIENTHELLO"); !slices.Equal(got, noneCH) {
		t.Errorf("padding off: ClientHello sizes %v, want %v", got, noneCH)
	}
	if got := fields("padding-sweep-default over doh: sizes", "CLIENTHELLO"); !slices.Equal(got, paddedCH) {
		t.Errorf("padding on: ClientHello sizes %v, want %v", got, paddedCH)
	}
}

// TestGlanceRecordedFullRun reads the rows of a full default run (live
// capture, recorded from `echlab run`) and prints them.
func TestGlanceRecordedFullRun(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "glance", "default-run.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Rows []Row `json:"rows"`
	}
	if err := json.Unmarshal(b, &s); err != nil || len(s.Rows) != 19 {
		t.Fatalf("%d rows, %v", len(s.Rows), err)
	}
	var out, wide bytes.Buffer
	if err := WriteGlance(&out, s.Rows, "live"); err != nil {
		t.Fatal(err)
	}
	TableOptions{Wide: true}.WriteGlance(&wide, s.Rows, "live") //nolint:errcheck // a buffer
	checkWidth(t, "full run", out.String(), observe.DefaultTableWidth)
	if widest(wide.String()) <= observe.DefaultTableWidth {
		t.Errorf("wide table %d runes wide", widest(wide.String()))
	}
	checkLegend(t, out.String(), glanceTableHead(TableOptions{}))
	for label, mark := range map[string]string{"baseline over dot": MarkLeakExpected, "ech-shared over do53": MarkLeakExpected,
		"grease over doh": MarkLeakExpected, "ech-shared over doh": MarkPass, "esni over doh": MarkPass, "ech-hrr over doh": MarkPass} {
		if !strings.Contains(out.String(), "\n"+mark+" "+label+": ") {
			t.Errorf("verdict %q has not mark %s:\n%s", label, mark, out.String())
		}
	}
	for scen, cell := range map[string]string{"ech-hrr": " real +HRR ", "stale-retry": " 1/2 ", "ech-hide-alpn": " none [h2] ",
		"grease": " grease? "} {
		if line := glanceLine(out.String(), scen); !strings.Contains(line, cell) {
			t.Errorf("%s line lacks %q: %q", scen, cell, line)
		}
	}
	for _, cell := range []string{" grease-or-unknown-key ", " none (hidden: h2) ", "_https.secret.lab.test"} {
		if !strings.Contains(wide.String(), cell) {
			t.Errorf("wide table lacks %q:\n%s", cell, wide.String())
		}
	}
}

// TestGlanceMarks builds rows from cases and flows and checks that each
// outcome has its own mark: pass, leak by design, leak not expected,
// failed, skipped.
func TestGlanceMarks(t *testing.T) {
	ms := func(v float64) *client.Result {
		return &client.Result{ECH: client.ECHAccepted, HandshakeTime: time.Duration(v * float64(time.Millisecond))}
	}
	clear := &client.Result{ECH: client.ECHNone}
	cases := []CaseResult{
		{Case: Case{Scenario: "ech-shared", Transport: DNSDoH, Repeat: 1}, Outcome: OutcomeOK, Result: ms(1)},
		{Case: Case{Scenario: "ech-shared", Transport: DNSDoH, Repeat: 2}, Outcome: OutcomeOK, Result: ms(5)},
		{Case: Case{Scenario: "ech-shared", Transport: DNSDoH, Repeat: 3}, Outcome: OutcomeOK, Result: ms(3)},
		{Case: Case{Scenario: "baseline", Transport: DNSDo53, Repeat: 1}, Outcome: OutcomeOK, Result: clear},
		{Case: Case{Scenario: "ech-split", Transport: DNSDoH, Repeat: 1}, Outcome: OutcomeOK, Result: ms(2)},
		{Case: Case{Scenario: "ech-split", Transport: DNSDoT, Repeat: 1}, Outcome: OutcomeOK, Result: ms(2)},
		{Case: Case{Scenario: "ech-hrr", Transport: DNSDoH, Repeat: 1}, Outcome: OutcomeFailed},
		{Case: Case{Scenario: "ech-pq", Transport: DNSDoH, Repeat: 1}, Outcome: OutcomeSkipped, Detail: "no X-Wing"},
	}
	yes, no := true, false
	svc := netip.MustParseAddrPort("127.0.0.1:4443")
	flow := func(scen, sni string, acc *bool) *observe.Flow {
		return &observe.Flow{Scenario: scen, Server: svc, SNI: sni, ClientHelloLen: 1650, ECH: observe.ECHReal, InnerSNI: SecretName, ECHAccepted: acc}
	}
	dnsFlow := func(scen string) *observe.Flow {
		return &observe.Flow{Scenario: scen, Server: netip.MustParseAddrPort("127.0.0.1:53"),
			DNS: []observe.DNSMessage{{Name: "_4443._https." + SecretName + ".", Type: "HTTPS"}}}
	}
	rep := &observe.Report{Flows: []*observe.Flow{
		flow("ech-shared/doh", PublicName, &no), flow("ech-shared/doh", PublicName, &yes),
		flow("ech-shared/doh", PublicName, &no), flow("ech-shared/doh", PublicName, &yes),
		{Scenario: "baseline/do53", Server: svc, SNI: SecretName, ClientHelloLen: 1520}, dnsFlow("baseline/do53"),
		flow("ech-split/doh", SecretName, &yes),                           // an accepted ECH client whose name shows: not by design
		flow("ech-split/dot", PublicName, &yes), dnsFlow("ech-split/dot"), // a plain query over DoT: not by design
	}}
	rows := buildRows(cases, rep, map[uint16]bool{4443: true})
	want := map[string]string{"ech-shared/doh": MarkPass, "baseline/do53": MarkLeakExpected, "ech-split/doh": MarkLeak,
		"ech-split/dot": MarkLeak, "ech-hrr/doh": MarkFailed, "ech-pq/doh": MarkSkipped}
	seen := map[string]bool{}
	for _, r := range rows {
		label := r.Scenario + "/" + r.Transport
		if got := r.Mark(); got != want[label] {
			t.Errorf("%s: mark %q, want %q (leaked %v)", label, got, want[label], r.Leaked)
		}
		seen[r.Mark()] = true
	}
	if len(seen) != 5 {
		t.Errorf("marks %v are not five distinct ones", seen)
	}
	r := rows[0]
	if r.HandshakeN != 3 || r.HandshakeMedianMS != 3 || r.HandshakeMS != 3 || r.Accepted != "no→yes" ||
		r.AcceptedFlows != 2 || r.VerifiedFlows != 4 {
		t.Errorf("aggregated ech-shared: %+v", r)
	}
	if got := accCell(r) + " " + msCell(r); got != "2/4 3.0 n=3" {
		t.Errorf("cells %q", got)
	}
	var out bytes.Buffer
	if err := WriteGlance(&out, rows, "synth"); err != nil {
		t.Fatal(err)
	}
	if line := glanceLine(out.String(), "ech-shared"); !strings.Contains(line, " 3.0 ") || strings.Contains(line, "n=") {
		t.Errorf("n equal to the OK count is not repeated: %q", line)
	}
	if median([]float64{4, 1, 3, 2}) != 2.5 {
		t.Error("median of an even count")
	}
}

// TestTableFit cuts only the cuttable columns, from the widest, keeping a
// name's start and end.
func TestTableFit(t *testing.T) {
	tb := &observe.TextTable{Head: []string{"ID", "NAME", "SIZE"}, Cut: map[int]bool{1: true}}
	tb.Add("1", "_12345._https."+strings.Repeat("w", 40)+".secret.lab.test", "1650")
	tb.Add("2", "public.lab.test", "99999999")
	var b bytes.Buffer
	if err := tb.Write(&b, 40); err != nil {
		t.Fatal(err)
	}
	checkWidth(t, "fitted", b.String(), 40)
	if !strings.Contains(b.String(), "_12345._https.ww") || !strings.Contains(b.String(), "….lab.test  1650") || !strings.Contains(b.String(), "99999999") {
		t.Errorf("fitted:\n%s", b.String())
	}
	if got := observe.Wrap("aaa bbb ccc ddd", 8, 2); !slices.Equal(got, []string{"aaa bbb", "  ccc", "  ddd"}) {
		t.Errorf("wrap: %q", got)
	}
}

func checkWidth(t *testing.T, name, text string, width int) {
	t.Helper()
	for _, l := range strings.Split(text, "\n") {
		if n := utf8.RuneCountInString(l); n > width {
			t.Errorf("%s: a line of %d runes (> %d): %q", name, n, width, l)
		}
	}
}

func widest(text string) int {
	n := 0
	for _, l := range strings.Split(text, "\n") {
		n = max(n, utf8.RuneCountInString(l))
	}
	return n
}

// checkLegend: every mark and every column name of the table is
// explained under it.
func checkLegend(t *testing.T, out string, cols []string) {
	t.Helper()
	legend := out[strings.LastIndex(out, "\n\n"+glanceLegend[0].text)+1:]
	if strings.HasPrefix(cols[0], "SVC") {
		legend = out[strings.LastIndex(out, "\n\nSVC:")+1:]
	} else {
		for _, m := range []string{MarkPass, MarkLeakExpected, MarkLeak, MarkFailed, MarkSkipped} {
			if !strings.Contains(legend, m+" ") {
				t.Errorf("legend lacks mark %q:\n%s", m, legend)
			}
		}
	}
	for _, c := range cols {
		if c = strings.TrimSpace(c); c != "" && !strings.Contains(legend, c+": ") && c != "SCENARIO" {
			t.Errorf("legend lacks column %q:\n%s", c, legend)
		}
	}
}

func glanceTableHead(o TableOptions) []string { return o.glanceTable(nil).Head }

// glanceLine is the table line of a scenario's first row.
func glanceLine(out, scenario string) string {
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 2 && f[1] == scenario {
			return l
		}
	}
	return ""
}
