package interop

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/lab/capture"
	"github.com/echlab/echlab/lab/observe"
)

// Files the capture writes in the output directory.
const (
	CaptureFile = "capture.pcapng" // the live capture on lo
	FlowsJSON   = "flows.jsonl"    // lab.WriteJSON of the comparison
	FlowsCSV    = "flows.csv"      // lab.WriteCSV
	CompareMD   = "compare.md"     // lab.WriteMarkdown
)

// Capture is a live packet capture of the lab's server and DoH ports on
// the loopback interface, as an on-path observer would record it.
type Capture struct {
	Path  string // the pcapng file
	file  *os.File
	stopf func() error
}

// StartCapture captures the lab's server (TCP and UDP) and DoH ports on
// iface ("lo" in the namespace) into dir/CaptureFile. It needs root or
// CAP_NET_RAW (lab.ErrNoPermission otherwise).
func (l *Lab) StartCapture(iface string) (*Capture, error) {
	path := filepath.Join(l.Dir, CaptureFile)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("interop: %w", err)
	}
	stop, err := capture.StartLiveCapture(iface, []int{l.Port, l.DoHPort}, f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &Capture{Path: path, file: f, stopf: stop}, nil
}

// Stop ends the capture and closes the file. It is safe to call twice.
func (c *Capture) Stop() error {
	if c.file == nil {
		return nil
	}
	err := c.stopf()
	if cerr := c.file.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("interop: closing capture: %w", cerr)
	}
	c.file = nil
	return err
}

// ObserverKeys are the keys the observer opens ClientHellos with: the
// server's current key set and the stale one (what DNS publishes for
// StaleName), both read back from the lab's key directories.
func (l *Lab) ObserverKeys() (ech.KeyList, error) {
	var keys ech.KeyList
	for _, d := range []string{"current", "stale"} {
		ks, err := ech.LoadKeySet(filepath.Join(l.Dir, "keys", d))
		if err != nil {
			return nil, err
		}
		keys = append(keys, ks.Keys()...)
	}
	return keys, nil
}

// Window is the stretch of a run in which one browser ran one case, and the
// client addresses the server logged for it.
type Window struct {
	Scenario string // "BROWSER/CASE"
	Start    time.Time
	End      time.Time
	Clients  []string // ConnRecord.ClientAddr of the server's records
}

// ScenarioRules label the capture's flows: a server flow by its client
// port from the server's log (within the window), then anything else to
// the server or DoH port by time window ("BROWSER/CASE" and
// "BROWSER/CASE/doh").
func (l *Lab) ScenarioRules(ws []Window) []observe.ScenarioRule {
	var rules []observe.ScenarioRule
	for _, w := range ws {
		for _, c := range w.Clients {
			ap, err := netip.ParseAddrPort(c)
			if err != nil {
				continue
			}
			rules = append(rules, observe.ScenarioRule{Scenario: w.Scenario, ClientPort: ap.Port(),
				ServerPort: uint16(l.Port), Start: w.Start, End: w.End})
		}
	}
	for _, w := range ws {
		rules = append(rules,
			observe.ScenarioRule{Scenario: w.Scenario, ServerPort: uint16(l.Port), Start: w.Start, End: w.End},
			observe.ScenarioRule{Scenario: w.Scenario + "/doh", ServerPort: uint16(l.DoHPort), Start: w.Start, End: w.End})
	}
	return rules
}

// CompareCapture reads the capture with the observer's keys and the
// scenario rules of ws, and writes FlowsJSON, FlowsCSV and CompareMD in
// the lab's directory.
func (l *Lab) CompareCapture(path string, ws []Window) (*observe.Report, error) {
	keys, err := l.ObserverKeys()
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("interop: %w", err)
	}
	defer f.Close()
	rep, err := observe.Compare(f, observe.CompareOptions{Keys: keys, Scenarios: l.ScenarioRules(ws)})
	if err != nil {
		return nil, err
	}
	for name, write := range map[string]func(*os.File, *observe.Report) error{
		FlowsJSON: func(w *os.File, r *observe.Report) error { return observe.WriteJSON(w, r) },
		FlowsCSV:  func(w *os.File, r *observe.Report) error { return observe.WriteCSV(w, r) },
		CompareMD: func(w *os.File, r *observe.Report) error { return observe.WriteMarkdown(w, r) },
	} {
		out, err := os.Create(filepath.Join(l.Dir, name))
		if err != nil {
			return rep, fmt.Errorf("interop: %w", err)
		}
		err = write(out, rep)
		if cerr := out.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("interop: %w", cerr)
		}
		if err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// Observe stops the capture, compares it (see CompareCapture) with a
// window per result, and gives each result its Observed view; a result the
// capture contradicts fails.
func (l *Lab) Observe(rep *Report, capt *Capture) error {
	time.Sleep(150 * time.Millisecond) // the capture reads with a 50 ms timeout
	if err := capt.Stop(); err != nil {
		return err
	}
	ws := make([]Window, 0, len(rep.Results))
	for _, r := range rep.Results {
		w := Window{Scenario: r.Browser + "/" + r.Case, Start: r.Start, End: r.End}
		for _, c := range r.Connections {
			w.Clients = append(w.Clients, c.ClientAddr)
		}
		ws = append(ws, w)
	}
	cmp, err := l.CompareCapture(capt.Path, ws)
	if err != nil {
		return err
	}
	rep.Capture = CaptureSummary{File: CaptureFile, Packets: cmp.Packets, Flows: len(cmp.Flows), Warnings: cmp.Warnings}
	for i := range rep.Results {
		l.observe(&rep.Results[i], cmp)
		if err := l.checkKeylog(&rep.Results[i], capt.Path); err != nil {
			return err
		}
	}
	return nil
}
