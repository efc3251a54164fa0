package conformance

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/echlab/echlab/lab/observe"
)

// TestCellCaptures: with OutDir, every cell has its own pcapng, named in
// its evidence and in conformance.md, and the ClientHellos read back from
// it by lab/observe are the hellos the evidence lists (count, SNI, ECH or
// not, config id): none (echlab refuses in service-without-ech), one
// without ECH (go there), one (baseline), two (retry-stale).
func TestCellCaptures(t *testing.T) {
	cases, err := SelectCases([]string{"baseline", "service-without-ech", "retry-stale"})
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	rep, err := Run(t.Context(), Options{Cases: cases, Dir: t.TempDir(), OutDir: out})
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteFiles(out); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(out, MarkdownFile))
	if err != nil {
		t.Fatal(err)
	}
	counts := map[int]int{}
	for _, cr := range rep.Cases {
		for _, cell := range cr.Cells {
			want := filepath.Join(CaptureDir, cr.Case.Name+"-"+string(cell.Client)+".pcapng")
			if cell.Evidence.Capture != want {
				t.Fatalf("%s/%s: capture %q, want %q", cr.Case.Name, cell.Client, cell.Evidence.Capture, want)
			}
			if !strings.Contains(string(md), "(capture: ["+want+"]("+want+"))") {
				t.Errorf("%s: conformance.md does not name %s", cr.Case.Name, want)
			}
			got := captureHellos(t, filepath.Join(out, want))
			hs := cell.Evidence.Hellos
			counts[len(hs)]++
			if len(got) != len(hs) {
				t.Fatalf("%s/%s: %d ClientHellos in the capture, evidence lists %d (%s)", cr.Case.Name, cell.Client, len(got), len(hs), cell.Why)
			}
			for i, f := range got {
				h := hs[i]
				sameID := (f.ECHConfigID == nil) == (h.ConfigID == nil) && (f.ECHConfigID == nil || *f.ECHConfigID == *h.ConfigID)
				if f.SNI != h.SNI || (f.ECH == observe.ECHOuter) != (h.ECH != "") || !sameID {
					t.Errorf("%s/%s hello %d: capture SNI %q ECH %q, evidence %s", cr.Case.Name, cell.Client, i, f.SNI, f.ECH, h)
				}
			}
		}
	}
	if counts[0] == 0 || counts[1] == 0 || counts[2] == 0 {
		t.Fatalf("cells by hello count %v: want cells with 0, 1 and 2 hellos", counts)
	}
}

// captureHellos reads a pcapng with lab/observe and returns its flows
// that carry a ClientHello, in order.
func captureHellos(t *testing.T, file string) []*observe.Flow {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rep, err := observe.Compare(f, observe.CompareOptions{})
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if !rep.Synthesized {
		t.Errorf("%s: not marked as synthesized", file)
	}
	var out []*observe.Flow
	for _, fl := range rep.Flows {
		if fl.ClientHelloLen > 0 {
			out = append(out, fl)
		}
	}
	return out
}
