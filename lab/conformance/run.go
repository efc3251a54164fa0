package conformance

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/echlab/echlab/internal/pki"
	"github.com/echlab/echlab/lab/capture"
	"github.com/echlab/echlab/resolver"
)

// Options say what Run runs. The zero value runs every case with every
// client in a temporary folder.
type Options struct {
	// Dir holds the suite's CA, keys and zone files; "" means a temporary
	// folder removed at the end.
	Dir     string
	Cases   []Case   // nil means Catalogue()
	Clients []Client // nil means Clients()
	// CellTimeout bounds one client in one case; 0 means 20 s. A browser
	// page load is bounded by it, and its cell by it plus browserGrace.
	CellTimeout time.Duration
	// Progress, when set, is called after each case.
	Progress func(CaseResult)
	// OutDir, when set, is where each cell's capture goes: the flows the
	// relay in front of the case's server carried for that client, as a
	// synthesized pcapng OutDir/pcap/CASE-CLIENT.pcapng, named in
	// Evidence.Capture relative to OutDir (where WriteFiles puts the
	// reports). "" writes no captures.
	OutDir string
}

// CaptureDir is the folder of Options.OutDir that holds the cells'
// captures.
const CaptureDir = "pcap"

func (o *Options) populate() error {
	if o.Cases == nil {
		o.Cases = Catalogue()
	}
	if o.Clients == nil {
		o.Clients = Clients()
	}
	for _, c := range o.Clients {
		if !slices.Contains(KnownClients(), c) {
			return fmt.Errorf("conformance: unknown client %q (known: %v)", c, KnownClients())
		}
	}
	if o.CellTimeout <= 0 {
		o.CellTimeout = 20 * time.Second
	}
	return ValidateCatalogue(o.Cases)
}

// Run serves each case on loopback (its server variant behind a recording
// relay, a resolver publishing its records), runs each client against it
// and grades the cells.
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := o.populate(); err != nil {
		return nil, err
	}
	if o.Dir == "" {
		dir, err := os.MkdirTemp("", "echlab-conformance-")
		if err != nil {
			return nil, fmt.Errorf("conformance: %w", err)
		}
		defer os.RemoveAll(dir)
		o.Dir = dir
	}
	envDir := filepath.Join(o.Dir, "env")
	env, err := NewEnv(envDir)
	if err != nil {
		return nil, err
	}
	rep := &Report{Clients: o.Clients}
	for _, c := range o.Cases {
		cr, err := runCase(ctx, env, envDir, c, o.Clients, o.CellTimeout, o.OutDir)
		if err != nil {
			return rep, err
		}
		rep.Cases = append(rep.Cases, cr)
		if o.Progress != nil {
			o.Progress(cr)
		}
	}
	return rep, nil
}

// RunCase runs one case with each client, without captures. envDir is
// where NewEnv saved env (the resolver's DoH certificate comes from its
// CA).
func RunCase(ctx context.Context, env *Env, envDir string, c Case, clients []Client, cellTimeout time.Duration) (CaseResult, error) {
	return runCase(ctx, env, envDir, c, clients, cellTimeout, "")
}

// runCase runs one case with each client and, with outDir, writes each
// cell's capture once the case's relays have stopped (so every recorded
// connection is complete).
func runCase(ctx context.Context, env *Env, envDir string, c Case, clients []Client, cellTimeout time.Duration, outDir string) (CaseResult, error) {
	cr := CaseResult{Case: c}
	if err := c.Validate(); err != nil {
		return cr, err
	}
	srv, err := startCase(env, envDir, c)
	if err != nil {
		return cr, fmt.Errorf("conformance: case %s: %w", c.Name, err)
	}
	srv.target.browserDir = filepath.Join(filepath.Dir(envDir), "browsers", c.Name)
	srv.target.browserTimeout = cellTimeout
	recs := make([]*capture.Recorder, len(clients))
	for i, cl := range clients {
		cr.Cells = append(cr.Cells, srv.runCell(ctx, c, cl, cellTimeout))
		recs[i] = srv.rec.next()
	}
	srv.close()
	if outDir == "" {
		return cr, nil
	}
	for i := range cr.Cells {
		cell := &cr.Cells[i]
		name, err := writeCapture(outDir, c.Name+"-"+string(cell.Client)+".pcapng", recs[i])
		if err != nil {
			return cr, err
		}
		cell.Evidence.Capture = name
	}
	return cr, nil
}

// runCell runs one client against the case's servers and grades it.
func (s *caseServer) runCell(ctx context.Context, c Case, cl Client, cellTimeout time.Duration) Cell {
	limit := cellTimeout
	if cl.IsBrowser() {
		limit += browserGrace
	}
	cctx, cancel := context.WithTimeout(ctx, limit)
	ev := Evidence{}
	cl.run(cctx, s.target, &ev)
	cancel()
	// The client has finished (a browser has exited): wait until the
	// relay's log has every ClientHello it sent, so that none lands in
	// the next cell's evidence.
	s.obs.Settle(capture.FirstBytesTimeout + time.Second)
	ev.Hellos, ev.Queries = s.hellos.take(), s.queries.take()
	ev.browserReport()
	ev.Outcome = ev.outcome()
	return grade(c, cl, ev)
}

// caseServer is what one case runs: the server variant, the relay in front
// of it, and the resolver.
type caseServer struct {
	target  target
	hellos  *helloLog
	obs     *capture.Observer // the relay in front of the server, its Filter hellos
	queries *queryLog
	rec     *cellRecorder
	closers []func() error
}

func (s *caseServer) close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
}

// startCase starts the case's server, the relay and the resolver.
func startCase(env *Env, envDir string, c Case) (*caseServer, error) {
	s := &caseServer{hellos: &helloLog{}, queries: &queryLog{}, rec: newCellRecorder()}
	addr, stop, err := StartServer(c.Server, env)
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, stop)
	obs := &capture.Observer{Filter: s.hellos, WrapConn: s.rec.wrap}
	s.obs = obs
	s.closers = append(s.closers, obs.Close)
	relay, err := obs.RelayTCP("https/conformance", addr)
	if err != nil {
		s.close()
		return nil, err
	}
	_, p, _ := net.SplitHostPort(relay)
	port, _ := strconv.Atoi(p)
	s.target = target{port: port, roots: env.CA.Pool(), caFile: filepath.Join(envDir, pki.CACertFile)}
	if err := s.startResolver(env, envDir, c); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// startResolver writes the case's zone and starts a resolver with Do53
// (UDP and TCP on one port, so that a truncated answer is retried over
// TCP) and DoH.
func (s *caseServer) startResolver(env *Env, envDir string, c Case) error {
	zone, err := ZoneText(c.DNS, env, s.target.port)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp(envDir, "zone-"+c.Name+"-")
	if err != nil {
		return fmt.Errorf("conformance: %w", err)
	}
	s.closers = append(s.closers, func() error { return os.RemoveAll(dir) })
	file := filepath.Join(dir, "lab.test.zone")
	if err := os.WriteFile(file, []byte(zone), 0o644); err != nil {
		return fmt.Errorf("conformance: %w", err)
	}
	var r *resolver.Running
	for range 5 {
		do53, perr := freePair()
		if perr != nil {
			return perr
		}
		r, err = resolver.Start(resolver.Config{Zones: []resolver.ZoneFile{{File: file, Origin: LabZone}},
			Listen: resolver.Listen{UDP: do53, TCP: do53, DoH: "127.0.0.1:0"}, TLS: resolver.TLSFiles{CADir: envDir},
			QueryLog: s.queries})
		if err == nil || !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
	}
	if err != nil {
		return err
	}
	s.closers = append(s.closers, r.Close)
	switch c.DNS.transport() {
	case DNSDo53:
		s.target.dnsURL = "udp://" + r.Addr("udp").String()
		s.target.do53 = r.Addr("udp").String()
	default:
		s.target.dnsURL = "https://" + r.Addr("doh").String() + resolver.DoHPath
	}
	return nil
}

// freePair returns a loopback address whose port is free for TCP and UDP
// (at the time of asking: the caller retries on EADDRINUSE).
func freePair() (string, error) {
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", fmt.Errorf("conformance: %w", err)
		}
		addr := ln.Addr().String()
		pc, err := net.ListenPacket("udp", addr)
		ln.Close()
		if err != nil {
			continue
		}
		pc.Close()
		return addr, nil
	}
	return "", errors.New("conformance: no port free for both TCP and UDP")
}
