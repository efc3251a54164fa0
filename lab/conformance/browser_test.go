package conformance

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/echlab/echlab/lab/interop"
)

// browserCICases are the cases TestBrowserConformance runs (the whole
// catalogue with its origin-target twins takes about 4.5 minutes, most of
// it Firefox's failed cells, which last the 20 s bound each).
var browserCICases = []string{"baseline", "unknown-version-only", "service-without-ech", "port-prefix-target-dot",
	"port-prefix-target-explicit", "baseline" + OriginTargetSuffix, "reject-no-retry" + OriginTargetSuffix,
	"retry-stale" + OriginTargetSuffix, "oversized-list-do53" + OriginTargetSuffix}

// wantBrowser are the grades and outcomes measured as root in the netns
// harness (Chromium 156, Firefox ESR 153 here).
var wantBrowser = map[string]map[Client]struct {
	grade   Grade
	outcome Outcome
}{
	"baseline":                                 {ClientChromium: {Fail, OutcomeGREASE}, ClientFirefox: {Fail, OutcomeGREASE}},
	"unknown-version-only":                     {ClientChromium: {Pass, OutcomeGREASE}, ClientFirefox: {Pass, OutcomeGREASE}},
	"service-without-ech":                      {ClientChromium: {Pass, OutcomeGREASE}, ClientFirefox: {Pass, OutcomeGREASE}},
	"port-prefix-target-dot":                   {ClientChromium: {Pass, OutcomeGREASE}, ClientFirefox: {Pass, OutcomeECH}},
	"port-prefix-target-explicit":              {ClientChromium: {Pass, OutcomeECH}, ClientFirefox: {Pass, OutcomeECH}},
	"baseline" + OriginTargetSuffix:            {ClientChromium: {Pass, OutcomeECH}, ClientFirefox: {Pass, OutcomeECH}},
	"reject-no-retry" + OriginTargetSuffix:     {ClientChromium: {Pass, OutcomeClear}, ClientFirefox: {Pass, OutcomeClear}},
	"retry-stale" + OriginTargetSuffix:         {ClientChromium: {Pass, OutcomeFailed}, ClientFirefox: {Pass, OutcomeFailed}},
	"oversized-list-do53" + OriginTargetSuffix: {ClientChromium: {Pass, OutcomeECH}, ClientFirefox: {Pass, OutcomeECH}},
}

// TestBrowserConformance runs the browser columns on browserCICases as
// root with ECHLAB_INTEROP=1 (not yet in CI: see the skip), re-run in a
// fresh network and mount namespace. It asserts the grades and outcomes as measured,
// and the facts issue 17 names: Chromium ignores a _PORT._https record
// whose TargetName is "." (GREASE; Firefox uses it); both send GREASE
// when no usable config is published; both follow retry configs once and
// no more (retry-stale). Neither uses a record whose TargetName is another
// name than the origin (baseline: GREASE).
func TestBrowserConformance(t *testing.T) {
	if interop.InNetns() {
		browserConformanceInNetns(t)
		return
	}
	// Not under plain CI=true yet: in 5 runs here one cell came out
	// otherwise than measured (not identified), and Chromium's
	// oversized-list-do53 cell varies; until each cell is known stable,
	// the browser columns run on request only.
	ci := os.Getenv("CI") == "true" && os.Getenv("ECHLAB_INTEROP") != ""
	if os.Getenv("ECHLAB_INTEROP") == "" {
		t.Skip("set ECHLAB_INTEROP=1 (as root) to run real browsers")
	}
	if os.Geteuid() != 0 {
		if ci {
			t.Fatal("the browser columns need root for the network namespace")
		}
		t.Skip("the browser columns need root for the network namespace")
	}
	for _, p := range []string{"chromium", "firefox-esr", "certutil"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("%s missing: run lab/interop's TestBrowsers first, or apt-get install -y chromium firefox-esr libnss3-tools", p)
		}
	}
	if err := interop.Reexec([]string{"-test.run=^TestBrowserConformance$", "-test.v", "-test.timeout=9m"}); err != nil {
		t.Fatal(err)
	}
}

func browserConformanceInNetns(t *testing.T) {
	if err := interop.Isolate(); err != nil {
		t.Fatal(err)
	}
	all := append(Catalogue(), OriginTarget(Catalogue())...)
	var cases []Case
	for _, name := range browserCICases {
		for _, c := range all {
			if c.Name == name {
				cases = append(cases, c)
			}
		}
	}
	if len(cases) != len(browserCICases) {
		t.Fatalf("%d of %d cases found", len(cases), len(browserCICases))
	}
	start := time.Now()
	rep, err := Run(context.Background(), Options{Dir: t.TempDir(), Cases: cases, Clients: BrowserClients(),
		Progress: func(cr CaseResult) { t.Log(cr.Line()) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d cases × 2 browsers in %s", len(cases), time.Since(start).Round(time.Second))
	for _, cr := range rep.Cases {
		for _, cell := range cr.Cells {
			want := wantBrowser[cr.Case.Name][cell.Client]
			if cr.Case.Name == "oversized-list-do53"+OriginTargetSuffix && cell.Client == ClientChromium &&
				cell.Grade == Fail && cell.Evidence.Outcome == OutcomeGREASE {
				// Measured both ways in CI: Chromium waits for the HTTPS
				// answer over Do53 only a fraction of the A query's time,
				// and the truncated answer's retry over TCP sometimes comes
				// after it gave up and sent GREASE (README: "varies").
				t.Logf("%s/chromium: GREASE this time (the truncated HTTPS answer came too late)", cr.Case.Name)
				continue
			}
			if cell.Grade != want.grade || cell.Evidence.Outcome != want.outcome {
				t.Errorf("%s/%s: %s (%s), want %s (%s): %s", cr.Case.Name, cell.Client, cell.Grade, cell.Evidence.Outcome,
					want.grade, want.outcome, cell.Why)
			}
			if cr.Case.Name == "retry-stale"+OriginTargetSuffix {
				// One retry with the retry configs (id 3), and no second.
				hs := cell.Evidence.Hellos
				if len(hs) != 2 || hs[0].ECH != "real" || hs[1].ECH != "real" || *hs[0].ConfigID != 1 || *hs[1].ConfigID == 1 {
					t.Errorf("%s/%s: hellos %s, want ECH id 1 then one retry with the retry config", cr.Case.Name, cell.Client, cell.Evidence.wire())
				}
			}
			if cell.Evidence.Outcome != OutcomeECH && cell.Evidence.Outcome != OutcomeGREASE && cell.Evidence.Error == "" && cell.Evidence.Outcome != OutcomeClear {
				t.Errorf("%s/%s: %s without the browser's error", cr.Case.Name, cell.Client, cell.Evidence.Outcome)
			}
		}
	}
}
