package lab

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/echlab/echlab/lab/observe"
)

// TestRunJoinsExactly: in a run, every flow the observer saw is joined to
// its case by an identifier the case recorded, never by port or time:
// TLS and QUIC flows by ClientHello random (crypto/tls, GREASE, the
// sealing probe and ESNI; DoT, DoH, DoH3 and DoQ included), Do53 flows by
// query id. client.jsonl carries what each case recorded.
func TestRunJoinsExactly(t *testing.T) {
	for _, capture := range []string{CaptureSynth, CaptureLive} {
		t.Run(capture, func(t *testing.T) {
			if capture == CaptureLive && os.Geteuid() != 0 {
				t.Skip("live capture needs root or CAP_NET_RAW")
			}
			out := t.TempDir()
			res, _ := runAll(t, RunConfig{OutDir: out, Capture: capture, H3: true,
				Scenarios:  []string{"baseline", "grease", "ech-shared-h3", "padding-on", "esni"},
				Transports: []string{DNSDo53, DNSDoH3, DNSDoQ}}, 15)
			if res.Capture != capture {
				t.Fatalf("capture %s", res.Capture)
			}
			checkExactJoins(t, out, res)
		})
	}
}

func checkExactJoins(t *testing.T, out string, res *RunResult) {
	t.Helper()
	labels := map[string]int{}
	for _, f := range res.Report.Flows {
		want := observe.JoinClientRandom
		if f.Transport == observe.TransportUDPDNS || f.Transport == observe.TransportTCPDNS {
			want = observe.JoinDNSID
		}
		if f.ScenarioBy != want {
			t.Errorf("flow %d (%s %s to %v): %s by %q, want by %s", f.ID, f.Transport, f.Service, f.Server, f.Scenario, f.ScenarioBy, want)
		}
		labels[f.Scenario]++
	}
	for _, c := range res.Cases {
		if labels[scenarioLabel(c.Case)] == 0 {
			t.Errorf("no flow joined %s", scenarioLabel(c.Case))
		}
	}
	if len(res.Report.Warnings) != 0 {
		t.Errorf("report warnings %q", res.Report.Warnings)
	}
	f, err := os.Open(filepath.Join(out, FileClient))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var cr CaseResult
		if err := json.Unmarshal(sc.Bytes(), &cr); err != nil {
			t.Fatal(err)
		}
		if len(cr.ClientRandoms) == 0 || (cr.Transport == DNSDo53) != (len(cr.DNSIDs) > 0) {
			t.Errorf("client.jsonl: %s has randoms %v and DNS ids %v", cr.Label(), cr.ClientRandoms, cr.DNSIDs)
		}
	}
}
