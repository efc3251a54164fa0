package lab

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/echlab/echlab/lab/observe"
)

// TestPlayJoinsExactly plays against the lab's own servers and resolver,
// started in this process behind the recording relays, and compares the
// relays' capture with the scenarios.jsonl Play wrote: every flow, the
// wait for the lab's included, is joined by its ClientHello random, its
// DNS id or (the wait's bare TCP probes) its client port, never by a time
// window alone.
func TestPlayJoinsExactly(t *testing.T) {
	labDir, out := t.TempDir(), t.TempDir()
	rcfg, err := RunConfig{OutDir: labDir, Capture: CaptureSynth}.populate()
	if err != nil {
		t.Fatal(err)
	}
	outs, err := openOutputs(labDir)
	if err != nil {
		t.Fatal(err)
	}
	s, capt, err := startLab(rcfg, outs, &Progress{})
	if err != nil {
		outs.close()
		t.Fatal(err)
	}
	shared, base := s.services[ServiceShared], s.services[ServiceBaseline]
	cfg := PlayConfig{OutDir: out, RootCAs: s.ca.Pool(),
		DNS:       map[string]string{DNSDo53: s.dnsURLs[DNSDo53], DNSDoH: s.dnsURLs[DNSDoH]},
		Scenarios: []string{"baseline", "ech-shared", "grease"}, Port: int(port(shared.addr)),
		// The lab publishes no split-mode name: the wait checks the
		// shared one twice.
		SplitName: SecretName, BaselineAddr: base.addr, ReadyTimeout: 20 * time.Second}
	res, playErr := Play(context.Background(), cfg)
	stopErr := errors.Join(s.close(), capt.stop(), outs.close())
	if playErr != nil {
		t.Fatalf("Play: %v (%+v)", playErr, res)
	}
	if stopErr != nil {
		t.Fatal(stopErr)
	}
	if len(res.Cases) != 4 {
		t.Fatalf("%d cases, want baseline, ech-shared over do53 and doh, grease", len(res.Cases))
	}
	for _, cr := range res.Cases {
		if len(cr.ClientRandoms) == 0 {
			t.Errorf("%s: no ClientHello random recorded", cr.Label())
		}
		if cr.Transport == DNSDo53 && len(cr.DNSIDs) == 0 {
			t.Errorf("%s: no DNS id recorded", cr.Label())
		}
	}
	pcap, err := os.ReadFile(filepath.Join(labDir, FileCapture))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, FileCapture), pcap, 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err := compareRun(out, s.allKeys(), s.esniKeySets())
	if err != nil {
		t.Fatal(err)
	}
	by := map[string]map[string]int{} // scenario → join → flows
	for _, f := range rep.Flows {
		switch {
		case f.ScenarioBy == observe.JoinClientRandom, f.ScenarioBy == observe.JoinDNSID,
			f.ScenarioBy == observe.JoinClientPort && f.Scenario == PlayReadyCheck:
		default:
			t.Errorf("flow %d (%s %s → %s, SNI %q, random %q, warnings %v) joined to %q by %q", f.ID, f.Transport, f.Client, f.Server, f.SNI, f.ClientRandom, f.Warnings, f.Scenario, f.ScenarioBy)
		}
		if by[f.Scenario] == nil {
			by[f.Scenario] = map[string]int{}
		}
		by[f.Scenario][f.ScenarioBy]++
	}
	t.Logf("%d flows: %v", len(rep.Flows), by)
	for _, w := range rep.Warnings {
		if strings.Contains(w, "time window") {
			t.Errorf("warning: %s", w)
		}
	}
	for _, want := range []struct{ scenario, by string }{
		{"baseline/doh", observe.JoinClientRandom}, {"ech-shared/do53", observe.JoinClientRandom}, {"ech-shared/do53", observe.JoinDNSID},
		{"ech-shared/doh", observe.JoinClientRandom}, {"grease/doh", observe.JoinClientRandom},
		{PlayReadyCheck, observe.JoinClientRandom}, {PlayReadyCheck, observe.JoinDNSID}, {PlayReadyCheck, observe.JoinClientPort},
	} {
		if by[want.scenario][want.by] == 0 {
			t.Errorf("no %s flow joined by %s; joins: %v", want.scenario, want.by, by)
		}
	}
}
