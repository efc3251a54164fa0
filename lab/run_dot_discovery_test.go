package lab

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/echlab/echlab/lab/observe"
)

// TestRunDoTDiscovery runs ech-shared-dot-discovery through Run next to
// ech-shared, both asked for Do53: the pinned scenario still discovers over
// DoT, and the observer sees a DoT flow, no plain DNS flow, no
// secret.lab.test in any DNS query and only public.lab.test in the SNI;
// ech-shared over Do53, in the same run, leaks the name in its query. The
// synth capture always runs; the live one needs root.
func TestRunDoTDiscovery(t *testing.T) {
	for _, capture := range []string{CaptureSynth, CaptureLive} {
		t.Run(capture, func(t *testing.T) {
			if capture == CaptureLive && os.Geteuid() != 0 {
				t.Skip("live capture needs root or CAP_NET_RAW")
			}
			testDoTDiscovery(t, capture)
		})
	}
}

func testDoTDiscovery(t *testing.T, capture string) {
	out := t.TempDir()
	res, _ := runAll(t, RunConfig{OutDir: out, Capture: capture,
		Scenarios: []string{ScenarioDoTDiscovery, "ech-shared"}, Transports: []string{DNSDo53}}, 2)
	if c := res.Cases[0]; c.Transport != DNSDoT || c.Result == nil || c.Result.DNSTransport != DNSDoT {
		t.Fatalf("%s ran over %s (client: %+v), want dot", ScenarioDoTDiscovery, c.Transport, c.Result)
	}
	label := ScenarioDoTDiscovery + "/" + DNSDoT
	var dot, toServer int
	for _, f := range res.Report.Flows {
		if f.Scenario != label {
			continue
		}
		switch {
		case f.Transport == observe.TransportUDPDNS || f.Transport == observe.TransportTCPDNS:
			t.Errorf("flow %d: plain DNS %v in the DoT-discovery case", f.ID, f.DNS)
		case f.Service == "dot":
			dot++
		case f.ClientHelloLen > 0:
			toServer++
			if f.SNI != PublicName || f.ECH != observe.ECHReal || f.InnerSNI != SecretName {
				t.Errorf("flow %d: SNI %q ECH %q inner %q, want %s, real, %s", f.ID, f.SNI, f.ECH, f.InnerSNI, PublicName, SecretName)
			}
		}
		for _, m := range f.DNS {
			if strings.Contains(m.Name, SecretName) {
				t.Errorf("flow %d (%s): the observer read %s in DNS", f.ID, f.Service, m.Name)
			}
		}
	}
	if dot == 0 || toServer == 0 {
		t.Errorf("%s: %d DoT flows, %d TLS flows to the server; want both", label, dot, toServer)
	}
	rows := readSummary(t, out)
	r := rows[label]
	if r.Mark() != MarkPass || len(r.DNSNames) != 0 || len(r.Leaked) != 0 || len(r.Unmet) != 0 ||
		!slices.Equal(r.SNI, []string{PublicName}) || r.Accepted != "yes" {
		t.Errorf("%s row: mark %s DNS %v leaked %v unmet %v SNI %v accepted %q: %s",
			label, r.Mark(), r.DNSNames, r.Leaked, r.Unmet, r.SNI, r.Accepted, r.Verdict)
	}
	if r, ok := rows["ech-shared/"+DNSDo53]; !ok || !slices.Contains(r.Leaked, SecretName) {
		t.Errorf("ech-shared over do53 in the same run: leaked %v, want %s in its plain DNS query", r.Leaked, SecretName)
	}
}
