package interop

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
)

// write saves results.json and results.txt (the table) in dir.
func (r *Report) write(dir string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("interop: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("interop: %w", err)
	}
	f, err := os.Create(filepath.Join(dir, "results.txt"))
	if err != nil {
		return fmt.Errorf("interop: %w", err)
	}
	defer f.Close()
	return r.Table(f)
}

// Table writes one row per browser and case, then why each case that did
// not pass did not.
func (r *Report) Table(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "BROWSER\tCASE\tOUTCOME\tECH\tOUTER SNI\tINNER SNI\tGREASE\tRETRIES\tTRANSPORT\tALPN\tCONFIG IDS\tCONNS\tCAPTURE\tTIME")
	for _, x := range r.Results {
		ids := strings.Trim(strings.Join(strings.Fields(fmt.Sprint(x.ConfigIDs)), ","), "[]")
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%t\t%d\t%s\t%s\t%s\t%d\t%s\t%.1fs\n", x.Browser, x.Case, x.Outcome,
			dash(x.ECH), dash(x.OuterSNI), dash(x.InnerSNI), x.Grease, x.Retries, dash(x.Transport), dash(x.ALPN),
			dash(ids), len(x.Connections), captureCell(x.Observed), x.DurationMS/1000)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if err := r.ObserverTable(w); err != nil {
		return err
	}
	for _, x := range r.Results {
		if x.Outcome != Pass {
			fmt.Fprintf(w, "\n%s %s: %s (%s)\n", x.Browser, x.Case, x.Outcome, x.Why)
		}
	}
	if len(r.Results) > 0 {
		fmt.Fprintf(w, "\n%s\n", strings.Join(versions(r), "; "))
	}
	return nil
}

// ObserverTable writes, per browser and case, every connection to the ECH
// server as the capture shows it; "*" marks the one the server judged by.
func (r *Report) ObserverTable(w io.Writer) error {
	if r.Capture.File == "" {
		return nil
	}
	fmt.Fprintf(w, "\nObserver's view (%s: %d packets, %d flows; keys: current and stale):\n", r.Capture.File, r.Capture.Packets, r.Capture.Flows)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "BROWSER\tCASE\tFLOW\tTRANSPORT\tSNI\tECH\tCONFIG ID\tINNER SNI\tACCEPTED\tCH LEN\tJA4")
	for _, x := range r.Results {
		if x.Observed == nil {
			continue
		}
		for i, f := range x.Observed.Flows {
			mark := ""
			if i == x.Observed.Deciding {
				mark = "*"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", x.Browser, x.Case, f.ID, mark, f.Transport,
				dash(f.SNI), dashIf(f.ECH), idString(f.ConfigID), dash(f.InnerSNI), boolString(f.Accepted), f.ClientHelloLen, dash(f.JA4))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, x := range r.Results {
		for _, d := range x.Observed.disagreed() {
			fmt.Fprintf(w, "capture disagrees on %s %s: %s\n", x.Browser, x.Case, d)
		}
	}
	return nil
}

// captureCell is the CAPTURE column: agree, DISAGREE, or "-" (not compared).
func captureCell(o *Observed) string {
	switch {
	case o == nil:
		return "-"
	case o.Agrees():
		return "agree"
	}
	return "DISAGREE"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// versions lists each browser's version once.
func versions(r *Report) []string {
	var out []string
	seen := map[string]bool{}
	for _, x := range r.Results {
		if !seen[x.Browser] {
			seen[x.Browser] = true
			out = append(out, x.Browser+": "+x.Version)
		}
	}
	return out
}
