package interop

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/lab"
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
	Path string // the pcapng file
	file *os.File
	live *lab.LiveCapture
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
	live, err := lab.StartLive(iface, []int{l.Port, l.DoHPort}, f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &Capture{Path: path, file: f, live: live}, nil
}

// Stop ends the capture, once it has read every packet sent before (see
// lab.LiveCapture.Stop), and closes the file. It is safe to call twice.
func (c *Capture) Stop() error {
	if c.file == nil {
		return nil
	}
	err := c.live.Stop()
	if cerr := c.file.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("interop: closing capture: %w", cerr)
	}
	c.file = nil
	return err
}

// tcpOpens is how many TCP connections to port the capture has seen open
// (0 once stopped).
func (c *Capture) tcpOpens(port int) int {
	if c.file == nil {
		return 0
	}
	return c.live.TCPOpens(uint16(port))
}

// recordWait bounds awaitRecords.
const recordWait = 2 * time.Second

// awaitRecords returns once the server has logged (from mark on) a TCP
// record for every connection to its port that the capture saw open
// since it counted opens: the server logs a connection when its handshake
// ends, and the browser has exited, so each one is ending. The capture is
// first synchronised, so that its count includes the browser's last
// packets. QUIC connections are not counted: the browser waited on the
// one that carried the page, whose record the server wrote before its
// response. The wait is bounded by recordWait (a connection can open
// twice in the count when its SYN was sent again).
func (l *Lab) awaitRecords(capt *Capture, mark, opens int) {
	if capt.file == nil || capt.live.Sync(recordWait) != nil {
		return
	}
	want := capt.tcpOpens(l.Port) - opens
	l.Log.waitFor(mark, recordWait, func(recs []server.ConnRecord) bool {
		n := 0
		for _, r := range recs {
			if r.Transport == server.TransportTCP {
				n++
			}
		}
		return n >= want
	})
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

// Window is one browser's run of one case: the ClientHello randoms of
// its SSLKEYLOGFILE, the client addresses the server logged for it, and
// its stretch of time.
type Window struct {
	Scenario string // "BROWSER/CASE"
	Randoms  []string
	Start    time.Time
	End      time.Time
	Clients  []ConnClient
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
// and "BROWSER/CASE/doh" (to the DoH port): by the ClientHello randoms of
// the browser's keylog; then a server flow by protocol and client port
// from the server's log, within the window; last anything else to the
// server or the DoH port by time window, which compare.md names as a
// guess.
func (l *Lab) ScenarioRules(ws []Window) []lab.ScenarioRule {
	var rules []lab.ScenarioRule
	for _, w := range ws {
		if len(w.Randoms) > 0 {
			rules = append(rules,
				lab.ScenarioRule{Scenario: w.Scenario, ClientRandoms: w.Randoms, ServerPort: uint16(l.Port)},
				lab.ScenarioRule{Scenario: w.Scenario + "/doh", ClientRandoms: w.Randoms, Proto: lab.ProtoTCP, ServerPort: uint16(l.DoHPort)})
		}
		for _, c := range w.Clients {
			ap, err := netip.ParseAddrPort(c.Addr)
			proto, ok := recordProtos[c.Transport]
			if err != nil || !ok {
				continue
			}
			rules = append(rules, lab.ScenarioRule{Scenario: w.Scenario, Proto: proto, ClientPort: ap.Port(),
				ServerPort: uint16(l.Port), Start: w.Start, End: w.End})
		}
	}
	for _, w := range ws {
		for _, proto := range []string{lab.ProtoTCP, lab.ProtoUDP} { // HTTPS and HTTP/3 share the port
			rules = append(rules, lab.ScenarioRule{Scenario: w.Scenario, Proto: proto, ServerPort: uint16(l.Port), Start: w.Start, End: w.End})
		}
		rules = append(rules, lab.ScenarioRule{Scenario: w.Scenario + "/doh", Proto: lab.ProtoTCP, ServerPort: uint16(l.DoHPort), Start: w.Start, End: w.End})
	}
	return rules
}

// recordProtos maps a server record's transport to its layer-4 protocol.
var recordProtos = map[string]string{server.TransportTCP: lab.ProtoTCP, server.TransportQUIC: lab.ProtoUDP}

// CompareCapture reads the capture with the observer's keys and the
// scenario rules of ws, and writes FlowsJSON, FlowsCSV and CompareMD in
// the lab's directory.
func (l *Lab) CompareCapture(path string, ws []Window) (*lab.Report, error) {
	keys, err := l.ObserverKeys()
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("interop: %w", err)
	}
	defer f.Close()
	rep, err := lab.Compare(f, lab.CompareOptions{Keys: keys, Scenarios: l.ScenarioRules(ws)})
	if err != nil {
		return nil, err
	}
	for name, write := range map[string]func(*os.File, *lab.Report) error{
		FlowsJSON: func(w *os.File, r *lab.Report) error { return lab.WriteJSON(w, r) },
		FlowsCSV:  func(w *os.File, r *lab.Report) error { return lab.WriteCSV(w, r) },
		CompareMD: func(w *os.File, r *lab.Report) error { return lab.WriteMarkdown(w, r) },
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
	if err := capt.Stop(); err != nil {
		return err
	}
	cmp, err := l.CompareCapture(capt.Path, windows(rep))
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
