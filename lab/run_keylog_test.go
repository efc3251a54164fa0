package lab

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/echlab/echlab/lab/observe"
)

// TestRunKeylogECH: a run's sslkeylog.txt (0600) holds the ECH_SECRET and
// ECH_CONFIG lines of the ClientHelloOuters the lab sealed itself
// (ech-hide-alpn, padding-on), keyed by their outer random, and Compare
// opens those flows from the keylog alone. With sslkeylog.txt, tshark
// decrypts the baseline and DoH connections but not the ECH one. The run
// also writes capture-with-keys.pcapng (0600, in the manifest), from which
// tshark alone decrypts them all.
func TestRunKeylogECH(t *testing.T) {
	out := t.TempDir()
	res, _ := runAll(t, RunConfig{OutDir: out, Capture: CaptureSynth, KeysDir: filepath.Join(out, "keys"), PKIDir: filepath.Join(out, "pki"),
		Scenarios: []string{"baseline", "ech-shared", ScenarioHideALPN, "padding-on"}, Transports: []string{DNSDoH}}, 4)
	f, err := os.Open(filepath.Join(out, FileKeylog))
	if err != nil {
		t.Fatal(err)
	}
	kl, err := observe.ParseKeylog(f)
	f.Close()
	if err != nil || len(kl.ECH) != 2 || len(kl.Warnings) != 0 {
		t.Fatalf("sslkeylog.txt: %d ECH entries (want 2), warnings %v, %v", len(kl.ECH), kl.Warnings, err)
	}
	if st, err := os.Stat(filepath.Join(out, FileKeylog)); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("%s: %v %v", FileKeylog, st, err)
	}
	opts := observe.CompareOptions{Scenarios: readRules(t, out)}
	opts.UseKeylog(kl)
	var opened []string
	for _, fl := range compareFile(t, filepath.Join(out, FileCapture), opts).Flows {
		if kl.ECH[fl.ClientRandom] == nil {
			continue
		}
		opened = append(opened, fl.Scenario)
		if fl.ECH != observe.ECHReal || fl.ECHOpenedBy != "keylog" || fl.InnerSNI != SecretName || fl.ECHAccepted == nil || !*fl.ECHAccepted {
			t.Errorf("%s flow from the run's keylog alone: ECH %q by %q inner %q accepted %v", fl.Scenario, fl.ECH, fl.ECHOpenedBy, fl.InnerSNI, fl.ECHAccepted)
		}
	}
	slices.Sort(opened)
	if !slices.Equal(opened, []string{ScenarioHideALPN + "/doh", "padding-on/doh"}) {
		t.Errorf("flows with logged ECH secrets: %v", opened)
	}
	withKeys := filepath.Join(out, FileCaptureKeys)
	if st, err := os.Stat(withKeys); err != nil || st.Mode().Perm() != 0o600 || !slices.Contains(res.Files, FileCaptureKeys) {
		t.Fatalf("%s: %v, %v; in the manifest: %v", FileCaptureKeys, st, err, res.Files)
	}
	want, ech, echFlows := map[string]bool{}, map[string]bool{}, 0 // client ports of the h2 connections (to the servers and DoH)
	for _, fl := range res.Report.Flows {
		if fl.Service == "h2" && (fl.Scenario == "baseline/doh" || fl.Scenario == "ech-shared/doh" && fl.ECH == observe.ECHReal) {
			want[strconv.Itoa(int(fl.Client.Port()))] = true
			if fl.ECH == observe.ECHReal {
				echFlows++
				ech[strconv.Itoa(int(fl.Client.Port()))] = true
			}
		}
	}
	got := tsharkDecrypted(t, "-r", withKeys)
	for p := range want {
		if !got[p] {
			t.Errorf("tshark -r %s did not decrypt the connection from port %s (decrypted %v)", FileCaptureKeys, p, got)
		}
	}
	got = tsharkDecrypted(t, "-r", filepath.Join(out, FileCapture), "-o", "tls.keylog_file:"+filepath.Join(out, FileKeylog))
	for p := range want {
		if got[p] == (ech[p]) {
			t.Errorf("tshark with sslkeylog.txt: connection from port %s decrypted %v, ECH %v", p, got[p], ech[p])
		}
	}
	if len(want) < 2 || echFlows != 1 {
		t.Errorf("h2 connections of baseline and ech-shared: %v, %d with ECH; want the baseline and one ECH connection at least", want, echFlows)
	}
}
