package lab

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/echlab/echlab/internal/testutil"
	"github.com/echlab/echlab/lab/observe"
)

// TestRunEndToEnd runs the embedded lab on a reduced matrix and checks the
// report against what each scenario must show an observer. The synth
// capture always runs; the live one needs root (CI runs as root).
func TestRunEndToEnd(t *testing.T) {
	for _, capture := range []string{CaptureSynth, CaptureLive} {
		t.Run(capture, func(t *testing.T) {
			if capture == CaptureLive && os.Geteuid() != 0 {
				t.Skip("live capture needs root or CAP_NET_RAW")
			}
			testRun(t, capture)
		})
	}
}

func testRun(t *testing.T, capture string) {
	out := t.TempDir()
	res, progress := runAll(t, RunConfig{OutDir: out, Capture: capture, Repeat: 1,
		Scenarios:  []string{"baseline", "ech-shared", "ech-split", "stale-retry", "grease"},
		Transports: []string{DNSDo53, DNSDoH}}, 10)
	if res.Capture != capture {
		t.Fatalf("capture %s, %d cases, %d failed, %d skipped\n%s", res.Capture, len(res.Cases), res.Failed, res.Skipped, progress)
	}
	if n := strings.Count(progress, "✓"); n != 10 {
		t.Errorf("progress has %d ✓ lines, want 10:\n%s", n, progress)
	}
	checkFiles(t, out)
	rows := readSummary(t, out)
	for _, sc := range []string{"baseline", "ech-shared", "ech-split", "stale-retry", "grease"} {
		for _, tr := range []string{DNSDo53, DNSDoH} {
			r, ok := rows[sc+"/"+tr]
			if !ok {
				t.Errorf("summary has no row %s/%s", sc, tr)
				continue
			}
			checkRow(t, r)
		}
	}
	checkStaleRetry(t, out)
	checkTshark(t, out)
	// 12 connections to the server (stale-retry makes two), 10 of them
	// with ECH, and 5 DoH connections to the resolver.
	if n, ech, _ := checkTsharkFlows(t, filepath.Join(out, FileCapture), filepath.Join(out, FileFlowsJSONL)); n != 17 || ech != 10 {
		t.Errorf("%d ClientHellos, %d with ECH; want 17 and 10", n, ech)
	}
}

// checkRow asserts what the observer must have learned in one row.
func checkRow(t *testing.T, r Row) {
	t.Helper()
	name := r.Scenario + "/" + r.Transport
	switch r.Scenario {
	case "baseline", "grease":
		if !slices.Equal(r.SNI, []string{SecretName}) || !slices.Contains(r.Leaked, SecretName) {
			t.Errorf("%s: SNI %v leaked %v, want the true name in the clear SNI", name, r.SNI, r.Leaked)
		}
		if r.Scenario == "grease" && !slices.Equal(r.ECH, []string{observe.ECHGreaseOrKey}) {
			t.Errorf("%s: ECH %v, want a GREASE extension no key opens", name, r.ECH)
		}
	default:
		if !slices.Equal(r.SNI, []string{PublicName}) || !slices.Equal(r.InnerSNI, []string{SecretName}) {
			t.Errorf("%s: SNI %v inner %v, want only %s outside and %s recovered with keys", name, r.SNI, r.InnerSNI, PublicName, SecretName)
		}
		want := "yes"
		if r.Scenario == "stale-retry" {
			want = "no→yes"
		}
		if r.Accepted != want {
			t.Errorf("%s: accepted %q, want %q (verified with the keys)", name, r.Accepted, want)
		}
		if r.ClientHelloBytes == 0 || r.HandshakeMS <= 0 {
			t.Errorf("%s: ClientHello %d bytes, handshake %.2f ms", name, r.ClientHelloBytes, r.HandshakeMS)
		}
	}
	inDNS := slices.ContainsFunc(r.DNSNames, func(n string) bool { return strings.HasSuffix(n, SecretName) })
	if r.Transport == DNSDo53 && !inDNS {
		t.Errorf("%s: plain DNS names %v lack %s", name, r.DNSNames, SecretName)
	}
	if r.Transport == DNSDoH && len(r.DNSNames) > 0 {
		t.Errorf("%s: the observer read DNS names %v over DoH", name, r.DNSNames)
	}
	if r.Transport == DNSDoH && r.Scenario != "baseline" && r.Scenario != "grease" && len(r.Leaked) > 0 {
		t.Errorf("%s: leaked %v: %s", name, r.Leaked, r.Verdict)
	}
	if r.Verdict == "" {
		t.Errorf("%s: no verdict", name)
	}
}

func checkFiles(t *testing.T, out string) {
	t.Helper()
	for _, f := range []string{FileCapture, FileKeylog, FileClient, FileServer, FileQueries, FileScenarios,
		FileReport, FileFlowsJSON, FileFlowsJSONL, FileFlowsCSV, FileSummary, FileManifest, FileZone} {
		fi, err := os.Stat(filepath.Join(out, f))
		if err != nil || fi.Size() == 0 {
			t.Errorf("output %s missing or empty: %v", f, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(out, FileKeylog)); err == nil && fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", FileKeylog, fi.Mode().Perm())
	}
	var m struct {
		Schema  int    `json:"schema"`
		Capture string `json:"capture"`
		Files   []struct{ Name string }
	}
	b, _ := os.ReadFile(filepath.Join(out, FileManifest))
	if err := json.Unmarshal(b, &m); err != nil || m.Schema != 1 || m.Capture == "" || len(m.Files) < 12 {
		t.Errorf("manifest: %+v, %v", m, err)
	}
}

// runAll runs cfg with a 45 s deadline and fails the test unless Run
// returns the given number of cases, none failed or skipped. It returns
// the result and what Run wrote to its Progress writer.
func runAll(t *testing.T, cfg RunConfig, cases int) (*RunResult, string) {
	t.Helper()
	var progress bytes.Buffer
	cfg.Progress = &progress
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, progress.String())
	}
	if len(res.Cases) != cases || res.Failed+res.Skipped != 0 {
		t.Fatalf("%d cases, %d failed, %d skipped\n%s", len(res.Cases), res.Failed, res.Skipped, progress.String())
	}
	return res, progress.String()
}

func readSummary(t *testing.T, out string) map[string]Row {
	t.Helper()
	var s struct {
		Schema int   `json:"schema"`
		Rows   []Row `json:"rows"`
	}
	b, err := os.ReadFile(filepath.Join(out, FileSummary))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &s); err != nil || s.Schema != 1 {
		t.Fatalf("summary.json: schema %d, %v", s.Schema, err)
	}
	rows := map[string]Row{}
	for _, r := range s.Rows {
		rows[r.Scenario+"/"+r.Transport] = r
	}
	return rows
}

// checkStaleRetry finds the stale-retry client records: rejected, retried
// with the server's retry configs, accepted.
func checkStaleRetry(t *testing.T, out string) {
	t.Helper()
	f, err := os.Open(filepath.Join(out, FileClient))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var cr CaseResult
		if err := json.Unmarshal(sc.Bytes(), &cr); err != nil {
			t.Fatalf("client.jsonl: %v", err)
		}
		if cr.Scenario != "stale-retry" {
			continue
		}
		n++
		if cr.Result == nil || !cr.Result.Retried || cr.Result.ECH != "accepted" || cr.Outcome != OutcomeOK {
			t.Errorf("stale-retry case %s: %+v", cr.Label(), cr.Result)
		}
	}
	if n != 2 {
		t.Errorf("client.jsonl has %d stale-retry records, want 2", n)
	}
}

// checkTshark opens the capture with tshark and compares its SNI list with
// the report's.
func checkTshark(t *testing.T, out string) {
	t.Helper()
	tshark := testutil.NeedTool(t, "tshark")
	capFile := filepath.Join(out, FileCapture)
	if b, err := exec.Command(tshark, "-r", capFile, "-q").CombinedOutput(); err != nil {
		t.Fatalf("tshark -r -q: %v\n%s", err, b)
	}
	b, err := exec.Command(tshark, "-r", capFile, "-Y", "tls.handshake.type == 1",
		"-T", "fields", "-e", "tls.handshake.extensions_server_name").Output()
	if err != nil {
		t.Fatalf("tshark fields: %v", err)
	}
	var fromTshark []string
	for _, l := range strings.Fields(string(b)) {
		if !slices.Contains(fromTshark, l) {
			fromTshark = append(fromTshark, l)
		}
	}
	var fromReport []string
	jb, _ := os.ReadFile(filepath.Join(out, FileFlowsJSONL))
	for _, line := range bytes.Split(bytes.TrimSpace(jb), []byte("\n")) {
		var f observe.Flow
		if err := json.Unmarshal(line, &f); err != nil {
			t.Fatalf("flows.jsonl: %v", err)
		}
		if f.SNI != "" && !slices.Contains(fromReport, f.SNI) {
			fromReport = append(fromReport, f.SNI)
		}
	}
	slices.Sort(fromTshark)
	slices.Sort(fromReport)
	if !slices.Equal(fromTshark, fromReport) || len(fromReport) != 2 {
		t.Errorf("SNI names: tshark %v, report %v (want public.lab.test and secret.lab.test in both)", fromTshark, fromReport)
	}
}
