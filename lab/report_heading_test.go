package lab

import (
	"bytes"
	"strings"
	"testing"

	"github.com/echlab/echlab/lab/observe"
)

// headings returns the Markdown heading lines of doc.
func headings(doc string) []string {
	var hs []string
	for _, l := range strings.Split(doc, "\n") {
		if strings.HasPrefix(l, "#") {
			hs = append(hs, l)
		}
	}
	return hs
}

// TestReportHeadingLevels checks that report.md has one H1 (echlab run's)
// with Compare's report nested under it, while echlab compare's own
// Markdown keeps its H1.
func TestReportHeadingLevels(t *testing.T) {
	rep := &observe.Report{Format: "pcapng", Warnings: []string{"a warning"}}
	var run bytes.Buffer
	if err := writeReportMD(&run, &RunResult{Capture: CaptureSynth, Report: rep}); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(headings(run.String()), "|")
	want := "# echlab run|## At a glance|## Cases|## echlab compare|### Flows|### Privacy summary|### Warnings"
	if got != want {
		t.Errorf("report.md headings:\n got %s\nwant %s", got, want)
	}
	var cmp bytes.Buffer
	if err := observe.WriteMarkdown(&cmp, rep); err != nil {
		t.Fatal(err)
	}
	got = strings.Join(headings(cmp.String()), "|")
	want = "# echlab compare|## Flows|## Privacy summary|## Warnings"
	if got != want {
		t.Errorf("compare headings:\n got %s\nwant %s", got, want)
	}
}
