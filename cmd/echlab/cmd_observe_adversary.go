package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/echlab/echlab/lab/adversary"
	"github.com/echlab/echlab/lab/capture"
	"github.com/echlab/echlab/lab/intercept"
)

// onPathFlags are observe's adversary flags.
type onPathFlags struct {
	spec, log, clientCapture string
	targets                  listFlag
}

// register adds the flags to fs.
func (p *onPathFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&p.spec, "adversary", "", "act as an on-path adversary with these policies (lab/adversary spec, e.g. 'block-ech rst'); empty: capture only")
	fs.Var(&p.targets, "intercept", "with --adversary: ROLE=PROTO/ADDR:PORT destinations whose traffic goes through the adversary (repeatable, comma-separated; PROTO tcp, udp or tcp+udp)")
	fs.StringVar(&p.log, "adversary-log", "", "with --adversary: JSON lines file of the adversary's decisions")
	fs.StringVar(&p.clientCapture, "client-capture", "", "with --adversary: pcapng file of lo, where the client's leg (client to relay) runs")
}

// onPath is the observer acting as an on-path adversary: its policies,
// the interception that puts them on the client's path, the decision log
// and the capture of the client's leg (client → relay over lo).
type onPath struct {
	spec    string
	adv     *adversary.Adversary
	ic      *intercept.Intercept
	log     *os.File
	logged  int
	legOut  *os.File
	legStop func() error
}

// parse checks --adversary and --intercept before anything starts:
// a bad spec stops the observer with the adversary package's error.
// It returns nil policies when --adversary is empty (no adversary).
func (p *onPathFlags) parse() ([]adversary.Policy, []intercept.Target, error) {
	if strings.TrimSpace(p.spec) == "" {
		return nil, nil, nil
	}
	pols, err := adversary.Parse(p.spec)
	if err != nil {
		return nil, nil, err
	}
	targets, err := intercept.ParseTargets(p.targets...)
	if err != nil {
		return nil, nil, err
	}
	if len(targets) == 0 {
		return nil, nil, fmt.Errorf("observe: --adversary needs --intercept: the destinations to put the adversary in front of")
	}
	return pols, targets, nil
}

// start opens the decision log, starts the client-leg capture on
// lo and installs the interception. On error what started is stopped.
func (p *onPathFlags) start(pols []adversary.Policy, targets []intercept.Target) (op *onPath, err error) {
	op = &onPath{spec: p.spec, adv: adversary.New(pols)}
	defer func() {
		if err != nil {
			err = errors.Join(err, op.stop())
		}
	}()
	if p.log != "" {
		if op.log, err = os.Create(p.log); err != nil {
			return nil, err
		}
	}
	if p.clientCapture != "" {
		if op.legOut, err = os.Create(p.clientCapture); err != nil {
			return op, err
		}
		if op.legStop, err = capture.StartLiveCapture("lo", nil, op.legOut); err != nil {
			return op, fmt.Errorf("observe: client-leg capture on lo: %w", err)
		}
	}
	op.ic, err = intercept.Start(intercept.Config{Observer: &capture.Observer{Filter: op.adv}, Targets: targets})
	if err != nil {
		return op, err
	}
	fmt.Fprintf(os.Stderr, "echlab observe: adversary %q on the path of %d destinations\n", p.spec, len(targets))
	return op, nil
}

// flush appends the decisions made since the last flush to the log.
func (op *onPath) flush() error {
	if op == nil || op.log == nil {
		return nil
	}
	ds := op.adv.Decisions()
	var b []byte
	for _, d := range ds[op.logged:] {
		line, err := decisionLine(op.spec, d)
		if err != nil {
			return err
		}
		b = append(b, line...)
	}
	op.logged = len(ds)
	_, err := op.log.Write(b)
	return err
}

// decisionLine is one line of the log: the decision's JSON object with
// the column (the adversary's spec) first, as in a grid's adversary.jsonl.
func decisionLine(spec string, d adversary.Decision) ([]byte, error) {
	b, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	head, _ := json.Marshal(map[string]string{"column": spec})
	if len(b) > 2 {
		head = append(append(head[:len(head)-1], ','), b[1:]...)
	}
	return append(head, '\n'), nil
}

// stop removes the interception (rules first, then the relays), writes
// the last decisions, stops the client-leg capture and prints the counts.
func (op *onPath) stop() error {
	if op == nil {
		return nil
	}
	var errs []error
	if op.ic != nil {
		errs = append(errs, op.ic.Close())
	}
	errs = append(errs, op.flush())
	if op.log != nil {
		errs = append(errs, op.log.Close())
	}
	if op.legStop != nil {
		errs = append(errs, op.legStop())
	}
	if op.legOut != nil {
		errs = append(errs, op.legOut.Close())
	}
	counts := op.adv.Counts()
	names := make([]string, 0, len(counts))
	for n := range counts {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "echlab observe: adversary: %q matched %d times\n", n, counts[n])
	}
	if op.ic != nil {
		fmt.Fprintf(os.Stderr, "echlab observe: adversary: %d decisions; interception removed\n", op.logged)
	}
	return errors.Join(errs...)
}
