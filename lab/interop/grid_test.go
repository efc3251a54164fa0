package interop

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/echlab/echlab/lab/adversary"
	"github.com/echlab/echlab/lab/capture"
)

// TestBrowserGrid runs the browser grid (every row of GridRows against the
// control column and DefaultGridColumns, or $ECHLAB_GRID_COLUMNS) under
// the same conditions as TestBrowsers: as root with ECHLAB_INTEROP=1, or
// under CI=true as root, re-run in a fresh network and mount namespace.
// The output stays in $ECHLAB_GRID_OUT (default: a fresh directory under
// /tmp, logged). It checks what holds in any correct run and logs what the
// browsers did in each cell.
func TestBrowserGrid(t *testing.T) {
	if InNetns() {
		browserGridInNetns(t)
		return
	}
	needBrowserSuite(t)
	if os.Getenv("ECHLAB_GRID_OUT") == "" {
		dir, err := os.MkdirTemp("", "echlab-grid-")
		if err != nil {
			t.Fatal(err)
		}
		t.Setenv("ECHLAB_GRID_OUT", dir)
	}
	t.Logf("output in %s", os.Getenv("ECHLAB_GRID_OUT"))
	if err := Reexec([]string{"-test.run=^TestBrowserGrid$", "-test.v", "-test.timeout=9m"}); err != nil {
		t.Fatal(err)
	}
}

// browserGridInNetns is the part of TestBrowserGrid that runs in the
// namespace.
func browserGridInNetns(t *testing.T) {
	if err := Isolate(); err != nil {
		t.Fatal(err)
	}
	var progress strings.Builder
	start := time.Now()
	rep, err := RunGrid(GridConfig{Dir: os.Getenv("ECHLAB_GRID_OUT"), Columns: os.Getenv("ECHLAB_GRID_COLUMNS"), Rows: splitEnv("ECHLAB_GRID_ROWS"),
		Timeout: 20 * time.Second, Progress: &progress})
	t.Log("\n" + progress.String())
	if err != nil {
		t.Fatal(err)
	}
	var table strings.Builder
	rep.Table(&table) //nolint:errcheck // strings.Builder
	t.Logf("the grid (%s, %d deviations from RFC 9849):\n%s", time.Since(start).Round(time.Second), rep.Deviations, table.String())
	checkGrid(t, rep)
}

// checkGrid asserts what holds in any correct grid run, whatever the
// browsers choose where RFC 9849 lets them.
func checkGrid(t *testing.T, rep *GridReport) {
	t.Helper()
	if len(rep.Cells) != len(rep.Rows)*len(rep.Columns) || rep.Columns[0] != "none" {
		t.Fatalf("%d cells for %d rows × columns %q", len(rep.Cells), len(rep.Rows), rep.Columns)
	}
	for _, row := range []string{"chromium/doh", "firefox/doh"} {
		if !slices.ContainsFunc(rep.Rows, func(r GridRow) bool { return r.Name == row }) {
			continue // narrowed by ECHLAB_GRID_ROWS
		}
		if c := rep.Cell(row, "none"); c == nil || c.Outcome != GridECH || slices.Contains(c.Leaks, LeakSNI) {
			t.Errorf("%s, no adversary: %+v, want ECH accepted and the name never in an SNI", row, c)
		}
	}
	// Loaded after Chromium's first DoH probe (chromiumProbeWait), the
	// automatic row's page is looked up over DoH, not the system resolver.
	if c := rep.Cell("chromium/auto", "none"); c != nil {
		overDoH := slices.ContainsFunc(c.DNS, func(q string) bool {
			return strings.HasPrefix(q, "doh _") && strings.HasSuffix(q, "._https."+SecretName+". HTTPS NOERROR")
		})
		do53 := slices.ContainsFunc(c.DNS, func(q string) bool { return !strings.HasPrefix(q, "doh ") })
		if c.Outcome != GridECH || !overDoH || do53 {
			t.Errorf("chromium/auto, no adversary: %s, lab queries %q; want ECH, the HTTPS record over DoH and no Do53 query", c.Outcome, c.DNS)
		}
	}
	for _, c := range rep.Cells {
		checkCell(t, c)
	}
}

// checkCell asserts one cell: connected in the clear means the adversary
// saw the true name in an SNI; connected with ECH means it did not; a
// ClientHello block leaves no cell with ECH and shows its resets of the
// browser's ECH ClientHellos in the adversary's log.
func checkCell(t *testing.T, c GridCell) {
	t.Helper()
	where := c.Row + " × " + c.Column
	switch c.Outcome {
	case GridClear, GridGREASE:
		if !slices.Contains(c.Leaks, LeakSNI) {
			t.Errorf("%s: %s, yet the adversary saw no SNI %s: %+v", where, c.Outcome, SecretName, c.Sightings)
		}
	case GridECH, GridECHRetried:
		if slices.Contains(c.Leaks, LeakSNI) && c.Column != "none" {
			t.Logf("%s: ECH, and also an SNI %s (an earlier connection in the clear)", where, SecretName)
		}
	case GridFailed:
	default:
		t.Errorf("%s: unknown outcome %q", where, c.Outcome)
	}
	col, err := adversary.Parse(c.Column)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range col {
		if p.Kind != adversary.BlockECH && p.Kind != adversary.BlockECHPublic {
			continue
		}
		if c.Outcome == GridECH || c.Outcome == GridECHRetried {
			t.Errorf("%s: connected with ECH through %s", where, p)
		}
		if !slices.ContainsFunc(c.Decisions, func(d adversary.Decision) bool {
			return d.Policy == p.String() && d.ECH && d.Action == capture.Reset.String()
		}) {
			t.Errorf("%s: the adversary's log has no reset of an ECH ClientHello by %s: %+v", where, p, c.Decisions)
		}
	}
}

// splitEnv is a comma-separated environment variable (nil when unset).
func splitEnv(name string) []string {
	if v := os.Getenv(name); v != "" {
		return strings.Split(v, ",")
	}
	return nil
}
