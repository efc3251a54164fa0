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
	"github.com/echlab/echlab/server"
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

// Window is one browser's run of one case: the ClientHello randoms of its
// SSLKEYLOGFILE, the connections the server logged for it, and its stretch
// of time.
type Window struct {
	Scenario string // "BROWSER/CASE"
	Randoms  []string
	Start    time.Time
	End      time.Time
	Clients  []ConnClient // of the server's records
}

// ConnClient is a client address the server logged, with the record's
// transport (server.TransportTCP, server.TransportQUIC).
type ConnClient struct {
	Transport string
	Addr      string
}

// windows are the Windows of rep's results.
func windows(rep *Report) []Window {
	ws := make([]Window, 0, len(rep.Results))
	for _, r := range rep.Results {
		w := Window{Scenario: r.Browser + "/" + r.Case, Randoms: r.ClientRandoms, Start: r.Start, End: r.End}
		for _, c := range r.Connections {
			w.Clients = append(w.Clients, ConnClient{Transport: c.Transport, Addr: c.ClientAddr})
		}
		ws = append(ws, w)
	}
	return ws
}

// ScenarioRules label the capture's flows "BROWSER/CASE" (to the server)
// and "BROWSER/CASE/doh" (to the DoH port). First by the ClientHello
// randoms of the browser's keylog: those in doh (the randoms of flows to
// the DoH port) label DoH flows, the others server flows. Then, for flows
// no random matches, a server flow by protocol and client port from the
// server's log within the window; last anything else to the server or the
// DoH port by time window, which compare.md names as a guess.
func (l *Lab) ScenarioRules(ws []Window, doh map[string]bool) []observe.ScenarioRule {
	var rules []observe.ScenarioRule
	for _, w := range ws {
		var srv, dns []string
		for _, r := range w.Randoms {
			if doh[r] {
				dns = append(dns, r)
			} else {
				srv = append(srv, r)
			}
		}
		if len(srv) > 0 {
			rules = append(rules, observe.ScenarioRule{Scenario: w.Scenario, ClientRandoms: srv})
		}
		if len(dns) > 0 {
			rules = append(rules, observe.ScenarioRule{Scenario: w.Scenario + "/doh", ClientRandoms: dns})
		}
		for _, c := range w.Clients {
			ap, err := netip.ParseAddrPort(c.Addr)
			proto, ok := recordProtos[c.Transport]
			if err != nil || !ok {
				continue
			}
			rules = append(rules, observe.ScenarioRule{Scenario: w.Scenario, Proto: proto, ClientPort: ap.Port(),
				ServerPort: uint16(l.Port), Start: w.Start, End: w.End})
		}
	}
	for _, w := range ws {
		for _, proto := range []string{observe.ProtoTCP, observe.ProtoUDP} { // HTTPS and HTTP/3 share the port
			rules = append(rules, observe.ScenarioRule{Scenario: w.Scenario, Proto: proto, ServerPort: uint16(l.Port), Start: w.Start, End: w.End})
		}
		rules = append(rules, observe.ScenarioRule{Scenario: w.Scenario + "/doh", Proto: observe.ProtoTCP,
			ServerPort: uint16(l.DoHPort), Start: w.Start, End: w.End})
	}
	return rules
}

// recordProtos maps a server record's transport to its layer-4 protocol.
var recordProtos = map[string]string{server.TransportTCP: observe.ProtoTCP, server.TransportQUIC: observe.ProtoUDP}

// dohRandoms returns the ClientHello randoms of the capture's flows to the
// DoH port: a first, keyless pass over the capture, so that ScenarioRules
// can tell a keylog's DoH randoms from its server ones (a random rule
// matches whatever the server port).
func (l *Lab) dohRandoms(path string) (map[string]bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("interop: %w", err)
	}
	defer f.Close()
	rep, err := observe.Compare(f, observe.CompareOptions{})
	if err != nil {
		return nil, err
	}
	doh := map[string]bool{}
	for _, fl := range rep.Flows {
		if int(fl.Server.Port()) == l.DoHPort && fl.ClientRandom != "" {
			doh[fl.ClientRandom] = true
		}
	}
	return doh, nil
}

// CompareCapture reads the capture with the observer's keys and the
// scenario rules of ws, and writes FlowsJSON, FlowsCSV and CompareMD in
// the lab's directory.
func (l *Lab) CompareCapture(path string, ws []Window) (*observe.Report, error) {
	keys, err := l.ObserverKeys()
	if err != nil {
		return nil, err
	}
	doh, err := l.dohRandoms(path)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("interop: %w", err)
	}
	defer f.Close()
	rep, err := observe.Compare(f, observe.CompareOptions{Keys: keys, Scenarios: l.ScenarioRules(ws, doh)})
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

// Observe stops the capture, compares it (see CompareCapture) with the
// randoms and window of each result, settles the server's records by the
// capture's flows (settleRecords), and gives each result its Observed
// view; a result the capture contradicts fails.
func (l *Lab) Observe(rep *Report, capt *Capture) error {
	// No wait before stopping: the browsers have exited, so every packet
	// they sent (and the server's answers they read) went through lo,
	// where the kernel queues each on the capture's socket as it passes;
	// Stop reads that socket until it has been idle for a read timeout,
	// so it writes all of them.
	if err := capt.Stop(); err != nil {
		return err
	}
	cmp, err := l.CompareCapture(capt.Path, windows(rep))
	if err != nil {
		return err
	}
	warnings := append(cmp.Warnings, l.settleRecords(rep, cmp, recordWait)...)
	rep.Capture = CaptureSummary{File: CaptureFile, Packets: cmp.Packets, Flows: len(cmp.Flows), Warnings: warnings}
	for i := range rep.Results {
		l.observe(&rep.Results[i], cmp)
		if err := l.checkKeylog(&rep.Results[i], capt.Path); err != nil {
			return err
		}
	}
	return nil
}
