package lab

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"time"

	"github.com/echlab/echlab/lab/observe"
)

// Output file names inside RunConfig.OutDir.
const (
	FileCapture    = "capture.pcapng"
	FileKeylog     = "sslkeylog.txt"
	FileClient     = "client.jsonl"
	FileServer     = "server.jsonl"
	FileQueries    = "queries.jsonl"
	FileScenarios  = "scenarios.jsonl"
	FileReport     = "report.md"
	FileFlowsJSON  = "flows.json"
	FileFlowsJSONL = "flows.jsonl"
	FileFlowsCSV   = "flows.csv"
	FileSummary    = "summary.json"
	FileManifest   = "manifest.json"
	FileZone       = "lab.test.zone"
)

// outputs are the files written while the cases run.
type outputs struct {
	dir                     string
	keylog, server, queries io.Writer
	clientEnc               *json.Encoder
	files                   []*os.File
}

func openOutputs(dir string) (*outputs, error) {
	o := &outputs{dir: dir}
	open := func(name string, perm os.FileMode) (*os.File, error) {
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, perm)
		if err != nil {
			o.close()
			return nil, fmt.Errorf("lab: %w", err)
		}
		o.files = append(o.files, f)
		return f, nil
	}
	var err error
	var f *os.File
	if f, err = open(FileKeylog, 0o600); err != nil { // secrets: 0600
		return nil, err
	}
	o.keylog = &lockedWriter{w: f}
	if f, err = open(FileServer, 0o644); err != nil {
		return nil, err
	}
	o.server = &lockedWriter{w: f}
	if f, err = open(FileQueries, 0o644); err != nil {
		return nil, err
	}
	o.queries = &lockedWriter{w: f}
	if f, err = open(FileClient, 0o644); err != nil {
		return nil, err
	}
	o.clientEnc = json.NewEncoder(f)
	return o, nil
}

// scenarioLabel is how flows of a case are labelled in the report: one
// row per scenario × DNS transport.
func scenarioLabel(c Case) string { return rowScenario(c) + "/" + c.Transport }

// rowScenario is a case's scenario as reports show it: a scenario with
// Render.RowPerPadding is split by padding policy (padding-sweep-default,
// padding-sweep-none).
func rowScenario(c Case) string {
	if c.scenario().Render.RowPerPadding {
		return c.Scenario + "-" + c.Padding
	}
	return c.Scenario
}

// writeCase appends a case to client.jsonl.
func (o *outputs) writeCase(cr CaseResult) {
	o.clientEnc.Encode(cr) //nolint:errcheck // checked when the files close
}

// scenarioLine is one line of scenarios.jsonl: a ScenarioRule for Compare
// plus the case it stands for.
type scenarioLine struct {
	observe.ScenarioRule
	Transport string `json:"transport"`
	Repeat    int    `json:"repeat"`
	Case      string `json:"case"`
	InnerName string `json:"inner_name,omitempty"`
	Padding   string `json:"padding,omitempty"`
}

// writeScenarioMap writes scenarios.jsonl, the rules Compare joins flows
// to cases by (see ScenarioRule). For each case: its ClientHello randoms;
// in live captures, each client port the servers and the resolver logged
// during it, with its protocol (a Do53 port with the case's query ids, so
// that a port number reused by a later query does not join); its Do53
// query ids within its time window; last its time window alone, the
// fallback. In synth captures the logs hold the relays' ports, so there
// are no port rules.
func writeScenarioMap(dir string, cases []CaseResult, live bool) error {
	ports := make([][]clientPort, len(cases))
	if live {
		ports = addClientPorts(dir, cases)
	}
	var lines []scenarioLine
	for i, cr := range cases {
		l := scenarioLine{ScenarioRule: observe.ScenarioRule{Scenario: scenarioLabel(cr.Case)}, Transport: cr.Transport,
			Repeat: cr.Repeat, Case: cr.Label(), InnerName: cr.InnerName, Padding: cr.Padding}
		add := func(r observe.ScenarioRule) {
			r.Scenario = l.Scenario
			pl := l
			pl.ScenarioRule = r
			lines = append(lines, pl)
		}
		if len(cr.ClientRandoms) > 0 {
			add(observe.ScenarioRule{ClientRandoms: cr.ClientRandoms})
		}
		for _, p := range ports[i] {
			r := observe.ScenarioRule{Proto: p.proto, ClientPort: p.port}
			if p.dns {
				r.DNSIDs = cr.DNSIDs
			}
			add(r)
		}
		if len(cr.DNSIDs) > 0 {
			add(observe.ScenarioRule{DNSIDs: cr.DNSIDs, Start: cr.Start, End: cr.End})
		}
		add(observe.ScenarioRule{Start: cr.Start, End: cr.End})
	}
	return writeFile(filepath.Join(dir, FileScenarios), func(w io.Writer) error {
		enc := json.NewEncoder(w)
		for _, l := range lines {
			if err := enc.Encode(l); err != nil {
				return err
			}
		}
		return nil
	})
}

// clientPort is a client's port as a server or the resolver logged it.
type clientPort struct {
	proto string // ProtoTCP or ProtoUDP
	port  uint16
	dns   bool // plain DNS (Do53 over UDP or TCP): its flows carry query ids
}

// logProtos maps the transport field of server.jsonl and queries.jsonl to
// the connection's protocol, and says whether it is plain DNS. The two
// files name transports differently ("tcp" is TLS in one, Do53 in the
// other); a transport not listed is left out of the map.
var logProtos = map[string]map[string]clientPort{
	FileServer: {"tcp": {proto: observe.ProtoTCP}, "quic": {proto: observe.ProtoUDP}},
	FileQueries: {"udp": {proto: observe.ProtoUDP, dns: true}, "tcp": {proto: observe.ProtoTCP, dns: true},
		"dot": {proto: observe.ProtoTCP}, "doh": {proto: observe.ProtoTCP}, "json": {proto: observe.ProtoTCP},
		"doh3": {proto: observe.ProtoUDP}, "doq": {proto: observe.ProtoUDP}},
}

// addClientPorts reads the client addresses of server.jsonl and
// queries.jsonl and gives each (protocol, port) to the case that was
// running when it was logged (cases run one at a time). It also sets the
// cases' ClientPorts.
func addClientPorts(dir string, cases []CaseResult) [][]clientPort {
	type entry struct {
		Time       time.Time `json:"time"`
		Transport  string    `json:"transport"`
		ClientAddr string    `json:"client_addr"` // server.jsonl
		Client     string    `json:"client"`      // queries.jsonl
	}
	out := make([][]clientPort, len(cases))
	for _, name := range []string{FileServer, FileQueries} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			continue
		}
		for _, line := range bytes.Split(b, []byte("\n")) {
			var e entry
			if json.Unmarshal(line, &e) != nil {
				continue
			}
			cp, ok := logProtos[name][e.Transport]
			cp.port = port(cmp.Or(e.ClientAddr, e.Client))
			if !ok || cp.port == 0 {
				continue
			}
			for i := range cases {
				c := &cases[i]
				if e.Time.Before(c.Start) || e.Time.After(c.End) || slices.Contains(out[i], cp) {
					continue
				}
				out[i] = append(out[i], cp)
				if !slices.Contains(c.ClientPorts, int(cp.port)) {
					c.ClientPorts = append(c.ClientPorts, int(cp.port))
				}
			}
		}
	}
	return out
}

func (o *outputs) close() error {
	var errs []error
	for _, f := range o.files {
		errs = append(errs, f.Close())
	}
	o.files = nil
	return errors.Join(errs...)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func writeFile(name string, fn func(io.Writer) error) error {
	f, err := os.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	if err := fn(f); err != nil {
		f.Close()
		return fmt.Errorf("lab: writing %s: %w", name, err)
	}
	return f.Close()
}

// writeReportMD writes report.md: the at-a-glance comparison, the
// verdicts, the cases, then Compare's flow-by-flow report.
func writeReportMD(w io.Writer, res *RunResult) error {
	fmt.Fprintf(w, "# echlab run\n\n%d cases: %d failed, %d skipped. Capture: %s.\n\n",
		len(res.Cases), res.Failed, res.Skipped, res.Capture)
	if res.CaptureLoss != "" {
		fmt.Fprintf(w, "**Capture incomplete**: %s.\n\n", observe.MarkdownCell(res.CaptureLoss))
	}
	fmt.Fprint(w, "## At a glance\n\n```\n")
	if err := WriteGlance(w, res.Rows, res.Capture); err != nil {
		return err
	}
	fmt.Fprint(w, "```\n\n## Cases\n\n| case | outcome | detail |\n|---|---|---|\n")
	for _, c := range res.Cases {
		fmt.Fprintf(w, "| %s | %s | %s |\n", observe.MarkdownCell(c.Label()), c.Outcome, observe.MarkdownCell(c.Detail))
	}
	fmt.Fprintln(w)
	return observe.WriteMarkdownLevel(w, res.Report, 2)
}

// ManifestSchema is the version of manifest.json's layout.
const ManifestSchema = 1

// writeManifest writes manifest.json: versions, capture kind and every
// file of the output folder with its size.
func writeManifest(cfg RunConfig, res *RunResult) error {
	type file struct {
		Name  string `json:"name"`
		Bytes int64  `json:"bytes"`
	}
	var files []file
	entries, err := os.ReadDir(cfg.OutDir)
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	for _, e := range entries {
		if info, err := e.Info(); err == nil && info.Mode().IsRegular() && e.Name() != FileManifest {
			files = append(files, file{e.Name(), info.Size()})
			res.Files = append(res.Files, e.Name())
		}
	}
	res.Files = append(res.Files, FileManifest)
	deps := map[string]string{}
	echlab := map[string]string{}
	if bi, ok := debug.ReadBuildInfo(); ok {
		echlab["version"] = bi.Main.Version
		for _, st := range bi.Settings {
			if st.Key == "vcs.revision" || st.Key == "vcs.modified" || st.Key == "vcs.time" {
				echlab[st.Key] = st.Value
			}
		}
		for _, d := range bi.Deps {
			deps[d.Path] = d.Version
		}
	}
	m := map[string]any{
		"schema": ManifestSchema, "tool": "echlab run", "created": time.Now().UTC(),
		"echlab": echlab, "go": runtime.Version(), "modules": deps,
		"capture": res.Capture, "synthesized": res.Capture == CaptureSynth,
		"keys_dir": cfg.KeysDir, "pki_dir": cfg.PKIDir,
		"scenarios": cfg.Scenarios, "transports": cfg.Transports, "repeat": max(cfg.Repeat, 1),
		"cases": len(res.Cases), "failed": res.Failed, "skipped": res.Skipped, "files": files,
	}
	if res.CaptureLoss != "" {
		m["capture_loss"] = res.CaptureLoss
	}
	return writeFile(filepath.Join(cfg.OutDir, FileManifest), func(w io.Writer) error { return writeJSON(w, m) })
}
