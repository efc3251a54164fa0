package lab

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/echlab/echlab/internal/labtest"
	"github.com/echlab/echlab/internal/testutil"
	"github.com/echlab/echlab/lab/observe"
)

// TestRunRestOfMatrix runs the scenarios and DNS transports that
// TestRunEndToEnd leaves out (HRR, post-quantum KEM, padding on and off;
// ECH discovered over DoT, DoH3 and DoQ), checks each row of the summary,
// and then checks, flow by flow, that tshark reads the same SNI and the
// same presence of the ECH extension in the lab's capture as Compare.
func TestRunRestOfMatrix(t *testing.T) {
	out := t.TempDir()
	runAll(t, RunConfig{OutDir: out, Capture: CaptureSynth, Repeat: 1,
		Scenarios:  []string{"ech-shared", "ech-hrr", "ech-pq", "padding-on", "padding-off"},
		Transports: []string{DNSDoT, DNSDoH3, DNSDoQ}}, 15)
	rows := readSummary(t, out)
	for _, sc := range []string{"ech-shared", "ech-hrr", "ech-pq", "padding-on", "padding-off"} {
		for _, tr := range []string{DNSDoT, DNSDoH3, DNSDoQ} {
			r, ok := rows[sc+"/"+tr]
			if !ok {
				t.Errorf("summary has no row %s/%s", sc, tr)
				continue
			}
			checkRow(t, r) // public name only, inner recovered, accepted
			if len(r.DNSNames) > 0 || len(r.Leaked) > 0 {
				t.Errorf("%s/%s: encrypted DNS leaked %v (DNS names %v)", sc, tr, r.Leaked, r.DNSNames)
			}
			if r.HRR != (sc == "ech-hrr") {
				t.Errorf("%s/%s: HelloRetryRequest seen = %v", sc, tr, r.HRR)
			}
		}
	}
	// A post-quantum hybrid KEM makes the ECH (and so the ClientHello)
	// larger than X25519.
	if pq, x := rows["ech-pq/"+DNSDoT], rows["ech-shared/"+DNSDoT]; pq.ClientHelloBytes <= x.ClientHelloBytes {
		t.Errorf("ech-pq ClientHello %d bytes, not larger than ech-shared's %d", pq.ClientHelloBytes, x.ClientHelloBytes)
	}
	// 15 ECH connections to the server, and 15 to the resolver: DoT,
	// then DoH3 and DoQ over QUIC.
	if n, ech, quic := checkTsharkFlows(t, filepath.Join(out, FileCapture), filepath.Join(out, FileFlowsJSONL)); n != 30 || ech != 15 || quic != 10 {
		t.Errorf("%d ClientHellos, %d with ECH, %d over QUIC; want 30, 15, 10", n, ech, quic)
	}
}

// helloView is one ClientHello as an observer reads it: the client port,
// the SNI and whether the ECH extension is present.
type helloView struct {
	port uint16
	sni  string
	ech  bool
}

// checkTsharkFlows compares tshark's reading of every ClientHello in a
// capture (TCP and QUIC) with the flows Compare wrote, and returns how
// many ClientHellos there were, how many had ECH and how many were QUIC.
func checkTsharkFlows(t *testing.T, capFile, flowsFile string) (hellos, ech, quic int) {
	t.Helper()
	tshark := testutil.NeedTool(t, "tshark")
	jb, err := os.ReadFile(flowsFile)
	if err != nil {
		t.Fatal(err)
	}
	var flows []observe.Flow
	var tlsPorts []uint16
	for _, line := range strings.Split(strings.TrimSpace(string(jb)), "\n") {
		var f observe.Flow
		if err := json.Unmarshal([]byte(line), &f); err != nil {
			t.Fatalf("%s: %v", flowsFile, err)
		}
		flows = append(flows, f)
		if f.Transport == observe.TransportTCP && !slices.Contains(tlsPorts, f.Server.Port()) {
			tlsPorts = append(tlsPorts, f.Server.Port())
		}
	}
	var fromTshark []helloView
	for _, h := range labtest.TsharkHellos(t, tshark, capFile, tlsPorts...) {
		v := helloView{port: h.Port, sni: h.SNI, ech: slices.Contains(h.Types, "65037")}
		if !slices.Contains(fromTshark, v) { // a second ClientHello after HRR, or a QUIC retransmission
			fromTshark = append(fromTshark, v)
		}
	}
	var fromCompare []helloView
	for _, f := range flows {
		if f.ClientHelloLen == 0 {
			continue // Do53, or no ClientHello
		}
		fromCompare = append(fromCompare, helloView{port: f.Client.Port(), sni: f.SNI, ech: f.ECH != observe.ECHNone && f.ECH != observe.ECHESNI})
	}
	less := func(s []helloView) func(i, j int) bool {
		return func(i, j int) bool {
			if s[i].port != s[j].port {
				return s[i].port < s[j].port
			}
			if s[i].sni != s[j].sni {
				return s[i].sni < s[j].sni
			}
			return !s[i].ech && s[j].ech
		}
	}
	// Compare the two as sets: tshark's list has one entry per distinct
	// view, and the OS may give two flows of one run the same client port.
	var compareSet []helloView
	for _, v := range fromCompare {
		if !slices.Contains(compareSet, v) {
			compareSet = append(compareSet, v)
		}
	}
	sort.Slice(fromTshark, less(fromTshark))
	sort.Slice(compareSet, less(compareSet))
	if !slices.Equal(fromTshark, compareSet) {
		t.Errorf("tshark and Compare disagree:\ntshark  %v\ncompare %v", fromTshark, compareSet)
	}
	for _, v := range fromCompare {
		if v.ech {
			ech++
		}
	}
	for _, l := range strings.Split(string(jb), "\n") {
		if strings.Contains(l, `"transport":"quic"`) && strings.Contains(l, `"client_hello_len"`) {
			quic++
		}
	}
	t.Logf("tshark and Compare agree on %d ClientHellos (%d with ECH, %d over QUIC)", len(fromCompare), ech, quic)
	return len(fromCompare), ech, quic
}

// TestRunReusesKeysAndCA runs the lab twice on the same key-set and CA
// folders: the second run must use them unchanged, not make new ones, and
// the observer, given those keys, must open the second run's ECH.
func TestRunReusesKeysAndCA(t *testing.T) {
	dir := t.TempDir()
	keys, pkiDir := filepath.Join(dir, "keys"), filepath.Join(dir, "pki")
	run := func(out string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var progress strings.Builder
		res, err := Run(ctx, RunConfig{OutDir: out, KeysDir: keys, PKIDir: pkiDir, Capture: CaptureSynth, Repeat: 1,
			Progress: &progress, Scenarios: []string{"ech-shared"}, Transports: []string{DNSDoH}})
		if err != nil || res.Failed+res.Skipped != 0 || len(res.Cases) != 1 {
			t.Fatalf("Run(%s): %v\n%s", out, err, progress.String())
		}
	}
	snapshot := func() map[string]string {
		t.Helper()
		files := map[string]string{}
		for _, d := range []string{keys, pkiDir} {
			err := filepath.WalkDir(d, func(p string, e os.DirEntry, err error) error {
				if err != nil || e.IsDir() {
					return err
				}
				b, err := os.ReadFile(p)
				files[p] = string(b)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		return files
	}
	run(filepath.Join(dir, "out1"))
	first := snapshot()
	if len(first) == 0 {
		t.Fatal("the first run wrote no keys or CA")
	}
	run(filepath.Join(dir, "out2"))
	second := snapshot()
	for p, b := range first {
		if second[p] != b {
			t.Errorf("%s changed between runs", p)
		}
	}
	if len(second) != len(first) {
		t.Errorf("%d files after the second run, %d after the first", len(second), len(first))
	}
	if _, err := os.Stat(filepath.Join(dir, "out2", "keys")); err == nil {
		t.Error("the second run made its own key sets in the output folder")
	}
	rows := readSummary(t, filepath.Join(dir, "out2"))
	if r := rows["ech-shared/"+DNSDoH]; !slices.Equal(r.InnerSNI, []string{SecretName}) || r.Accepted != "yes" {
		t.Errorf("second run: inner %v accepted %q", r.InnerSNI, r.Accepted)
	}
}
