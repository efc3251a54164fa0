package conformance

import (
	"strings"
	"testing"

	"github.com/echlab/echlab/lab/interop"
)

// hellosOf spells a browser's hellos as the relay logged them: "r1" is a
// real ECH offer with config id 1 (SNI public.lab.test), "g" a GREASE
// offer (a fresh random id each, SNI secret.lab.test).
func hellosOf(spec string) []Hello {
	var hs []Hello
	for i, f := range strings.Fields(spec) {
		switch {
		case f == "g":
			id := uint8(100 + i)
			hs = append(hs, Hello{SNI: SecretName, ECH: "grease", ConfigID: &id})
		case strings.HasPrefix(f, "r"):
			id := uint8(f[1] - '0')
			hs = append(hs, Hello{SNI: PublicName, ECH: "real", ConfigID: &id})
		}
	}
	return hs
}

// spell is the inverse of hellosOf (GREASE ids left out).
func spell(hs []Hello) string {
	parts := make([]string, len(hs))
	for i, h := range hs {
		parts[i] = "g"
		if h.ECH == "real" {
			parts[i] = "r" + string(rune('0'+*h.ConfigID))
		}
	}
	return strings.Join(parts, " ")
}

// TestBrowserAttempts: the browser's further connection attempts (each
// opening with the first hello, each with one follow-up) are set apart in
// whatever order the relay logged them, and a second follow-up stays
// where the grade counts it. The sequences are the ones measured in the
// netns harness (Chromium 156, Firefox ESR 153). Before, only a hello
// equal to the one just before it was set apart: Chromium's interleaved
// attempts in retry-stale (1 3 1 3 1 3, in 4 of 9 runs) graded fail with
// 4 or 6 hellos, and Firefox's loop on the retry config (1 3 3 3 …)
// graded pass with 2.
func TestBrowserAttempts(t *testing.T) {
	cases, err := SelectCases([]string{"retry-stale", "baseline", "reject-no-retry"})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Case{}
	for _, c := range cases {
		byName[c.Name] = c
	}
	for _, tc := range []struct {
		name, caseName, logged string
		loaded                 bool
		first, parallel        string
		grade                  Grade
		outcome                Outcome
	}{
		{"chromium retry-stale, attempts in a row", "retry-stale", "r1 r1 r3 r3", false, "r1 r3", "r1 r3", Pass, OutcomeFailed},
		{"chromium retry-stale, interleaved", "retry-stale", "r1 r3 r1 r3", false, "r1 r3", "r1 r3", Pass, OutcomeFailed},
		{"chromium retry-stale, navigation after both preconnects", "retry-stale", "r1 r3 r1 r3 r1 r3", false, "r1 r3", "r1 r3 r1 r3", Pass, OutcomeFailed},
		{"chromium retry-stale, mixed", "retry-stale", "r1 r1 r3 r3 r1 r3", false, "r1 r3", "r1 r3 r1 r3", Pass, OutcomeFailed},
		{"firefox retry-stale, a loop on the retry config", "retry-stale", "r1 r3 r3 r3 r3 r3 r3 r3 r3 r3", false, "r1 r3 r3 r3 r3 r3 r3 r3 r3 r3", "", Fail, OutcomeFailed},
		{"a second retry in one of two attempts", "retry-stale", "r1 r1 r3 r3 r3", false, "r1 r3 r3", "r1 r3", Fail, OutcomeFailed},
		{"chromium accepted", "baseline", "r1 r1", true, "r1", "r1", Pass, OutcomeECH},
		{"accepted after one retry, two attempts", "baseline", "r1 r1 r3 r3", true, "r1 r3", "r1 r3", Fail, OutcomeECHRetried},
		{"chromium reject-no-retry", "reject-no-retry", "r1 r1 g g", true, "r1 g", "r1 g", Pass, OutcomeClear},
		{"firefox reject-no-retry", "reject-no-retry", "r1 g", true, "r1 g", "", Pass, OutcomeClear},
		{"chromium GREASE", "baseline", "g g", true, "g g", "", Fail, OutcomeGREASE},
		{"no hello", "baseline", "", false, "", "", Fail, OutcomeRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := Evidence{Hellos: hellosOf(tc.logged), Browser: &BrowserRun{PageOutcome: interop.PageOutcome{Loaded: tc.loaded}}}
			if !tc.loaded {
				ev.Error, ev.ErrorClass = "ERR_ECH_NOT_NEGOTIATED", "browser"
			}
			ev.browserReport()
			ev.Outcome = ev.outcome()
			if got := spell(ev.Hellos); got != tc.first {
				t.Errorf("first attempt %q, want %q", got, tc.first)
			}
			if got := spell(ev.Browser.Parallel); got != tc.parallel {
				t.Errorf("further attempts %q, want %q", got, tc.parallel)
			}
			if n, m := len(ev.Hellos)+len(ev.Browser.Parallel), len(strings.Fields(tc.logged)); n != m {
				t.Errorf("%d hellos kept, %d logged", n, m)
			}
			cell := grade(byName[tc.caseName], ClientChromium, ev)
			if cell.Grade != tc.grade || ev.Outcome != tc.outcome {
				t.Errorf("%s (%s), want %s (%s): %s", cell.Grade, ev.Outcome, tc.grade, tc.outcome, cell.Why)
			}
		})
	}
}
