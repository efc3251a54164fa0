package conformance

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/echlab/echlab/lab/interop"
)

// browserCICases are the cases TestBrowserConformance runs: every case
// with TargetName the origin (its origin-target twin, where the case's
// records use the default target), and with the default target only the
// cases whose target is part of what they test (aliases, _PORT._https,
// the SVCB type) plus baseline, unknown-version-only and
// service-without-ech. The plain columns of the other cases repeat one
// fact, which baseline asserts: neither browser uses a record whose
// TargetName is another name than the origin.
var browserCICases = []string{
	"baseline", "baseline" + OriginTargetSuffix, "unknown-version-only",
	"unknown-version-only" + OriginTargetSuffix, "unknown-version-then-good" + OriginTargetSuffix,
	"mandatory-extension-only" + OriginTargetSuffix, "mandatory-extension-then-good" + OriginTargetSuffix,
	"public-name-ip" + OriginTargetSuffix, "public-name-invalid" + OriginTargetSuffix,
	"public-name-ip-then-good" + OriginTargetSuffix, "ech-base64-text" + OriginTargetSuffix,
	"ech-truncated" + OriginTargetSuffix, "oversized-list-do53" + OriginTargetSuffix,
	"oversized-list-doh" + OriginTargetSuffix, "alias-chain", "alias-beside-service", "alias-loop",
	"service-without-ech", "service-without-ech" + OriginTargetSuffix, "port-prefix-target-dot",
	"port-prefix-target-explicit", "priorities" + OriginTargetSuffix, "ttl-zero" + OriginTargetSuffix,
	"mandatory-ech" + OriginTargetSuffix, "mandatory-unknown-key" + OriginTargetSuffix, "svcb-type",
	"svcb-type" + OriginTargetSuffix, "reject-no-retry" + OriginTargetSuffix,
	"retry-foreign-cert" + OriginTargetSuffix, "retry-stale" + OriginTargetSuffix,
	"flip-confirmation" + OriginTargetSuffix, "hrr-without-ech" + OriginTargetSuffix,
	"flip-hrr-confirmation" + OriginTargetSuffix, "close-after-server-hello" + OriginTargetSuffix}

// wantBrowser are the grades and outcomes measured as root in the netns
// harness (Chromium 156, Firefox ESR 153 here), each the same in every
// run. Two cells varied before the harness was fixed, and are asserted
// as measured since: Chromium's oversized-list-do53 (GREASE in 2 of 9
// runs: Chromium gave up on the HTTPS answer over Do53 6 ms after the A
// answer, while the truncated answer's TCP retry was under way; the page
// load now waits at least 2 s for it over Do53 as over DoH, see
// interop.LoadPage) and Chromium's retry-stale (fail in 4 of 9 runs: its
// two preconnects and its navigation each send id 1 and one retry, and
// the relay logged them interleaved, which counted as one attempt with
// several retries; see attempts).
var wantBrowser = map[string]map[Client]struct {
	grade   Grade
	outcome Outcome
}{
	"baseline":                                           {ClientChromium: {Fail, OutcomeGREASE}, ClientFirefox: {Fail, OutcomeGREASE}},
	"baseline" + OriginTargetSuffix:                      {ClientChromium: {Pass, OutcomeECH}, ClientFirefox: {Pass, OutcomeECH}},
	"unknown-version-only":                               {ClientChromium: {Pass, OutcomeGREASE}, ClientFirefox: {Pass, OutcomeGREASE}},
	"unknown-version-only" + OriginTargetSuffix:          {ClientChromium: {Pass, OutcomeGREASE}, ClientFirefox: {Pass, OutcomeGREASE}},
	"unknown-version-then-good" + OriginTargetSuffix:     {ClientChromium: {Pass, OutcomeECH}, ClientFirefox: {Pass, OutcomeECH}},
	"mandatory-extension-only" + OriginTargetSuffix:      {ClientChromium: {Pass, OutcomeGREASE}, ClientFirefox: {Pass, OutcomeGREASE}},
	"mandatory-extension-then-good" + OriginTargetSuffix: {ClientChromium: {Pass, OutcomeECH}, ClientFirefox: {Pass, OutcomeECH}},
	"public-name-ip" + OriginTargetSuffix:                {ClientChromium: {Pass, OutcomeGREASE}, ClientFirefox: {Pass, OutcomeGREASE}},
	"public-name-invalid" + OriginTargetSuffix:           {ClientChromium: {Pass, OutcomeGREASE}, ClientFirefox: {Fail, OutcomeFailed}},
	"public-name-ip-then-good" + OriginTargetSuffix:      {ClientChromium: {Pass, OutcomeECH}, ClientFirefox: {Fail, OutcomeGREASE}},
	"ech-base64-text" + OriginTargetSuffix:               {ClientChromium: {Pass, OutcomeRefused}, ClientFirefox: {Pass, OutcomeGREASE}},
	"ech-truncated" + OriginTargetSuffix:                 {ClientChromium: {Pass, OutcomeRefused}, ClientFirefox: {Pass, OutcomeGREASE}},
	"oversized-list-do53" + OriginTargetSuffix:           {ClientChromium: {Pass, OutcomeECH}, ClientFirefox: {Pass, OutcomeECH}},
	"oversized-list-doh" + OriginTargetSuffix:            {ClientChromium: {Pass, OutcomeECH}, ClientFirefox: {Pass, OutcomeECH}},
	"alias-chain":          {ClientChromium: {Fail, OutcomeGREASE}, ClientFirefox: {Fail, OutcomeGREASE}},
	"alias-beside-service": {ClientChromium: {Fail, OutcomeGREASE}, ClientFirefox: {Fail, OutcomeGREASE}},
	"alias-loop":           {ClientChromium: {Pass, OutcomeGREASE}, ClientFirefox: {Fail, OutcomeGREASE}},
	"service-without-ech":  {ClientChromium: {Pass, OutcomeGREASE}, ClientFirefox: {Pass, OutcomeGREASE}},
	"service-without-ech" + OriginTargetSuffix:   {ClientChromium: {Pass, OutcomeGREASE}, ClientFirefox: {Pass, OutcomeGREASE}},
	"port-prefix-target-dot":                     {ClientChromium: {Pass, OutcomeGREASE}, ClientFirefox: {Pass, OutcomeECH}},
	"port-prefix-target-explicit":                {ClientChromium: {Pass, OutcomeECH}, ClientFirefox: {Pass, OutcomeECH}},
	"priorities" + OriginTargetSuffix:            {ClientChromium: {Pass, OutcomeECH}, ClientFirefox: {Pass, OutcomeECH}},
	"ttl-zero" + OriginTargetSuffix:              {ClientChromium: {Pass, OutcomeECH}, ClientFirefox: {Pass, OutcomeECH}},
	"mandatory-ech" + OriginTargetSuffix:         {ClientChromium: {Pass, OutcomeECH}, ClientFirefox: {Pass, OutcomeECH}},
	"mandatory-unknown-key" + OriginTargetSuffix: {ClientChromium: {Pass, OutcomeECH}, ClientFirefox: {Fail, OutcomeGREASE}},
	"svcb-type":                                     {ClientChromium: {Pass, OutcomeGREASE}, ClientFirefox: {Pass, OutcomeGREASE}},
	"svcb-type" + OriginTargetSuffix:                {ClientChromium: {Pass, OutcomeGREASE}, ClientFirefox: {Pass, OutcomeGREASE}},
	"reject-no-retry" + OriginTargetSuffix:          {ClientChromium: {Pass, OutcomeClear}, ClientFirefox: {Pass, OutcomeClear}},
	"retry-foreign-cert" + OriginTargetSuffix:       {ClientChromium: {Pass, OutcomeFailed}, ClientFirefox: {Pass, OutcomeFailed}},
	"retry-stale" + OriginTargetSuffix:              {ClientChromium: {Pass, OutcomeFailed}, ClientFirefox: {Fail, OutcomeFailed}},
	"flip-confirmation" + OriginTargetSuffix:        {ClientChromium: {Pass, OutcomeFailed}, ClientFirefox: {Pass, OutcomeFailed}},
	"hrr-without-ech" + OriginTargetSuffix:          {ClientChromium: {Pass, OutcomeFailed}, ClientFirefox: {Pass, OutcomeFailed}},
	"flip-hrr-confirmation" + OriginTargetSuffix:    {ClientChromium: {Pass, OutcomeFailed}, ClientFirefox: {Pass, OutcomeFailed}},
	"close-after-server-hello" + OriginTargetSuffix: {ClientChromium: {Pass, OutcomeFailed}, ClientFirefox: {Pass, OutcomeFailed}},
}

// TestBrowserConformance runs the browser columns on browserCICases under
// the same conditions as lab/interop's TestBrowserGrid: as root with
// ECHLAB_INTEROP=1, or under CI=true as root (not root, or a browser
// missing, fails it there), re-run in a fresh network and mount
// namespace. It asserts the grades and outcomes as measured, and the
// facts issue 17 names: Chromium ignores a _PORT._https record whose
// TargetName is "." (GREASE; Firefox uses it); both send GREASE when no
// usable config is published; Chromium follows retry configs once per
// connection attempt and no more, Firefox again and again (retry-stale).
// Neither uses a record whose TargetName is another name than the origin
// (baseline: GREASE). $ECHLAB_CONFORMANCE_OUT, when set, keeps the run
// (profiles, NetLogs, MOZ_LOGs, conformance.json); a cell that differs
// logs its whole evidence.
func TestBrowserConformance(t *testing.T) {
	if interop.InNetns() {
		browserConformanceInNetns(t)
		return
	}
	ci := os.Getenv("CI") == "true"
	if os.Getenv("ECHLAB_INTEROP") == "" && !ci {
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
	dir := os.Getenv("ECHLAB_CONFORMANCE_OUT")
	if dir == "" {
		dir = t.TempDir()
	}
	rep, err := Run(context.Background(), Options{Dir: dir, Cases: cases, Clients: BrowserClients(),
		Progress: func(cr CaseResult) { t.Log(cr.Line()) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d cases × 2 browsers in %s", len(cases), time.Since(start).Round(time.Second))
	if os.Getenv("ECHLAB_CONFORMANCE_OUT") != "" {
		if err := rep.WriteFiles(dir); err != nil {
			t.Error(err)
		}
	}
	for i, cr := range rep.Cases {
		for j, cell := range cr.Cells {
			if timedOutOnTruncated(cr.Case, cell) {
				cell = rerunCell(t, filepath.Join(dir, "rerun-"+string(cell.Client)), cr.Case, cell)
				rep.Cases[i].Cells[j] = cell
			}
			want := wantBrowser[cr.Case.Name][cell.Client]
			if cell.Grade != want.grade || cell.Evidence.Outcome != want.outcome {
				t.Errorf("%s/%s: %s (%s), want %s (%s): %s\nevidence: %s", cr.Case.Name, cell.Client, cell.Grade, cell.Evidence.Outcome,
					want.grade, want.outcome, cell.Why, evidenceJSON(cell.Evidence))
			}
			if cr.Case.Name == "retry-stale"+OriginTargetSuffix {
				checkRetryStale(t, cell)
			}
			if cell.Evidence.Outcome != OutcomeECH && cell.Evidence.Outcome != OutcomeGREASE && cell.Evidence.Error == "" && cell.Evidence.Outcome != OutcomeClear {
				t.Errorf("%s/%s: %s without the browser's error", cr.Case.Name, cell.Client, cell.Evidence.Outcome)
			}
		}
	}
}

// timedOutOnTruncated says whether a browser sent GREASE in
// oversized-list-do53-origin-target although the truncated HTTPS answer
// was retried over TCP: a browser-side timing variance, in 5 of 27 runs
// here (load 4 to 13), each time ECH when run again: Chromium gave up on the TCP retry after 9 ms (NetLog
// ERR_DNS_TIMED_OUT: its adaptive DNS timeout, at least 10 ms, follows the
// loopback resolver's sub-millisecond answers), and Firefox opened its
// connection before its own HTTPS lookup had the answer (MOZ_LOG:
// TlsHandshaker::SetupSSL before CompleteLookupByType).
func timedOutOnTruncated(c Case, cell Cell) bool {
	if c.Name != "oversized-list-do53"+OriginTargetSuffix || cell.Evidence.Outcome != OutcomeGREASE {
		return false
	}
	for _, q := range cell.Evidence.Queries {
		if q.Type == "HTTPS" && q.Transport == "tcp" {
			return true
		}
	}
	return false
}

// rerunCell runs case c with cell's browser once more (see
// timedOutOnTruncated), in the log, and returns the new cell.
func rerunCell(t *testing.T, dir string, c Case, cell Cell) Cell {
	t.Helper()
	t.Logf("%s/%s: GREASE although the truncated HTTPS answer was retried over TCP (browser-side timing under load): running the cell once more; first run: %s",
		c.Name, cell.Client, cell.Why)
	rep, err := Run(context.Background(), Options{Dir: dir, Cases: []Case{c}, Clients: []Client{cell.Client}})
	if err != nil {
		t.Fatal(err)
	}
	again := rep.Cases[0].Cells[0]
	t.Logf("%s/%s, run again: %s (%s): %s", c.Name, cell.Client, again.Grade, again.Evidence.Outcome, again.Why)
	return again
}

// checkRetryStale: Chromium's first attempt is id 1 and one retry with
// the retry config (id 3), and so is each of its further attempts;
// Firefox sends id 1 and then the retry config again and again (it
// restarts the request with the retry configs each rejection carries:
// 9 times here, its MOZ_LOG "Got SSL_ERROR_ECH_RETRY_WITH_ECH, use retry
// echConfig").
func checkRetryStale(t *testing.T, cell Cell) {
	t.Helper()
	hs := cell.Evidence.Hellos
	ok := len(hs) >= 2 && hs[0].ECH == "real" && *hs[0].ConfigID == 1
	for _, h := range hs[1:] {
		ok = ok && h.ECH == "real" && *h.ConfigID == 3
	}
	switch cell.Client {
	case ClientChromium:
		ok = ok && len(hs) == 2 && cell.Evidence.Browser != nil
		if ok {
			par := cell.Evidence.Browser.Parallel
			ok = len(par)%2 == 0
			for i := 0; ok && i < len(par); i += 2 {
				ok = sameHello(par[i], hs[0]) && sameHello(par[i+1], hs[1])
			}
			t.Logf("retry-stale/chromium: %d further attempts, each id 1 and one retry with id 3", len(par)/2)
		}
	case ClientFirefox:
		ok = ok && len(hs) >= 3
		t.Logf("retry-stale/firefox: %d retries with the retry config", len(hs)-1)
	}
	if !ok {
		t.Errorf("retry-stale/%s: hellos %s, want ECH id 1 then the retry config (id 3): once for chromium (in each attempt), more than once for firefox: %s",
			cell.Client, cell.Evidence.wire(), evidenceJSON(cell.Evidence))
	}
}

// evidenceJSON is a cell's whole evidence (hellos, DNS queries, the
// browser's error and timing) for the log of a cell that differs.
func evidenceJSON(ev Evidence) string {
	b, err := json.Marshal(ev)
	if err != nil {
		return err.Error()
	}
	return string(b)
}
