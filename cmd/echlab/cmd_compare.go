package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/echlab/echlab/lab/observe"
)

func init() {
	register(command{name: "compare", summary: "read a pcap/pcapng as an on-path observer: SNI, ECH, JA4, DNS, privacy summary", run: runCompare})
}

type compareFlags struct {
	keylog, jsonOut, csvOut, mdOut, scenarioMap string
	adversaryLog                                string
	keys, esniKeys                              listFlag
	wide                                        bool // every column of the tables
	stream                                      bool // write flows as they finish (see streamFlows)
}

// streamMin is the capture size from which echlab compare streams its
// flows unless --stream=false says otherwise.
const streamMin = 256 << 20

// tableFlows is how many flows the table and the Markdown report of a
// streamed comparison list.
const tableFlows = 1000

func newCompareFlags() (*flag.FlagSet, *compareFlags) {
	fs := newFlags("compare", "CAPTURE", "Read a pcap or pcapng capture (the lab's, tcpdump's, Wireshark's) the way an on-path\n"+
		"observer would: per flow the visible SNI, ALPN, ECH outer fields, JA4, the server's choices and\n"+
		"plain DNS; with --keys what ECH hid and whether the server accepted it. Prints a table and a\n"+
		"privacy summary; --json, --csv and --markdown write files ('-' for standard output).")
	c := &compareFlags{}
	fs.Var(&c.keys, "keys", "ECH key set folder (echlab keygen), or a folder of them such as a run's out/keys:\n"+
		"open ECH payloads and verify acceptance (repeatable)")
	fs.Var(&c.esniKeys, "esni-keys", "legacy ESNI key directory (echlab esni keygen): decrypt ESNI server names (repeatable)")
	fs.StringVar(&c.keylog, "keylog", "", "SSLKEYLOGFILE (RFC 9850): mark the flows it has secrets for, and open ECH\n"+
		"payloads from its ECH_SECRET and ECH_CONFIG lines (no server key needed)")
	fs.StringVar(&c.jsonOut, "json", "", "write one JSON object per flow to FILE")
	fs.StringVar(&c.csvOut, "csv", "", "write a CSV of the flows to FILE")
	fs.StringVar(&c.mdOut, "markdown", "", "write a Markdown report to FILE")
	fs.BoolVar(&c.stream, "stream", false, "write each flow to --json and --csv as soon as its connection closes, numbering flows in\n"+
		"that order (else by start time), and list only the first 1000 in the table and --markdown: memory stays\n"+
		"flat however many flows; on by default for captures over 256 MiB (--stream=false turns it off)")
	fs.BoolVar(&c.wide, "wide", false, "print every column of the tables (addresses, ECH parameters, JA4; wider than 120 columns)")
	fs.StringVar(&c.scenarioMap, "scenario-map", "", "JSON lines of {scenario, client_randoms, dns_ids, proto, client_port, server_port, start, end}\n"+
		"labelling flows, most exact key first (echlab run writes one: scenarios.jsonl)")
	fs.StringVar(&c.adversaryLog, "adversary-log", "", "an on-path adversary's decision log (adversary.jsonl of echlab run --adversary or\n"+
		"echlab observe --adversary): mark each flow with what the adversary did to it (adversary_action, _policy,\n"+
		"_column in --json and --csv) and add what it did per policy, the flows it blocked or rewrote, and the\n"+
		"decisions that matched no flow")
	return fs, c
}

func runCompare(args []string) error {
	fs, c := newCompareFlags()
	if err := parse(fs, args); err != nil {
		return err
	}
	// Allow flags after the capture name too.
	rest := fs.Args()
	if len(rest) >= 1 {
		if err := parse(fs, rest[1:]); err != nil {
			return err
		}
		rest = append(rest[:1], fs.Args()...)
	}
	if len(rest) != 1 {
		fs.Usage()
		return errUsage
	}
	opts, err := c.options()
	if err != nil {
		return err
	}
	f, err := os.Open(rest[0])
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	stream := c.stream
	if !flagSet(fs, "stream") {
		stream = st.Size() > streamMin
	}
	var in io.Reader = f
	prog := newProgress(os.Stderr, st.Size())
	if prog != nil {
		in, opts.Built = prog.reader(f), prog.built
	}
	if !stream {
		rep, err := observe.Compare(in, opts)
		prog.done()
		if err != nil {
			return err
		}
		return c.write(rep)
	}
	return c.streamFlows(in, opts, prog)
}

// flagSet reports whether the command line set the flag.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// streamFlows compares with the flows streamed: --json and --csv are
// written flow by flow as connections close, the table and --markdown
// list the first tableFlows flows and the whole summary.
func (c *compareFlags) streamFlows(in io.Reader, opts observe.CompareOptions, prog *progress) error {
	var outs []*outFile
	defer func() {
		for _, o := range outs {
			o.close()
		}
	}()
	var writers []func(*observe.Flow) error
	var flushes []func() error
	if c.jsonOut != "" {
		o, err := openOut(c.jsonOut)
		if err != nil {
			return err
		}
		outs = append(outs, o)
		j := observe.NewFlowJSON(o.w)
		writers = append(writers, o.wrap(j.Write))
	}
	if c.csvOut != "" {
		o, err := openOut(c.csvOut)
		if err != nil {
			return err
		}
		outs = append(outs, o)
		cw := observe.NewFlowCSV(o.w)
		writers = append(writers, o.wrap(cw.Write))
		flushes = append(flushes, func() error { return o.wrapErr(cw.Flush()) })
	}
	opts.KeepFlows = tableFlows
	opts.OnFlow = func(f *observe.Flow) error {
		for _, w := range writers {
			if err := w(f); err != nil {
				return err
			}
		}
		return nil
	}
	rep, err := observe.Compare(in, opts)
	prog.done()
	if err != nil {
		return err
	}
	var errs []error
	for _, fl := range flushes {
		errs = append(errs, fl())
	}
	for _, o := range outs {
		errs = append(errs, o.close())
	}
	outs = nil
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if c.jsonOut != "-" && c.csvOut != "-" && c.mdOut != "-" {
		if err := (observe.TableOptions{Wide: c.wide}).WriteTable(os.Stdout, rep); err != nil {
			return err
		}
	}
	if c.mdOut != "" {
		return writeTo(c.mdOut, rep, observe.WriteMarkdown)
	}
	return nil
}

// outFile is an output of a streamed comparison: a buffered file, or
// standard output for "-".
type outFile struct {
	path   string
	f      *os.File // nil for standard output
	w      *bufio.Writer
	closed bool
}

func openOut(path string) (*outFile, error) {
	if path == "-" {
		return &outFile{path: path, w: bufio.NewWriterSize(os.Stdout, 64<<10)}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	return &outFile{path: path, f: f, w: bufio.NewWriterSize(f, 64<<10)}, nil
}

// wrap names the file in the errors of write.
func (o *outFile) wrap(write func(*observe.Flow) error) func(*observe.Flow) error {
	return func(f *observe.Flow) error { return o.wrapErr(write(f)) }
}

func (o *outFile) wrapErr(err error) error {
	if err != nil && o.f != nil {
		return fmt.Errorf("%s: %w", o.path, err)
	}
	return err
}

// close flushes and closes the file, once.
func (o *outFile) close() error {
	if o.closed {
		return nil
	}
	o.closed = true
	err := o.w.Flush()
	if o.f != nil {
		err = errors.Join(err, o.f.Close())
	}
	return o.wrapErr(err)
}

func (c *compareFlags) options() (observe.CompareOptions, error) {
	var opts observe.CompareOptions
	if len(c.keys) > 0 {
		keys, err := observe.LoadKeySets(c.keys...) // retired keys too: the capture may predate their grace's end
		if err != nil {
			return opts, err
		}
		opts.Keys = keys
	}
	if c.keylog != "" {
		f, err := os.Open(c.keylog)
		if err != nil {
			return opts, err
		}
		defer f.Close()
		kl, err := observe.ParseKeylog(f)
		if err != nil {
			return opts, err
		}
		opts.UseKeylog(kl)
	}
	if err := c.addESNIKeys(&opts); err != nil {
		return opts, err
	}
	if c.scenarioMap != "" {
		f, err := os.Open(c.scenarioMap)
		if err != nil {
			return opts, err
		}
		defer f.Close()
		if opts.Scenarios, err = observe.ReadScenarioMap(f); err != nil {
			return opts, err
		}
	}
	if c.adversaryLog != "" {
		f, err := os.Open(c.adversaryLog)
		if err != nil {
			return opts, err
		}
		defer f.Close()
		if opts.Adversary, err = observe.ReadAdversaryLog(f, c.adversaryLog); err != nil {
			return opts, err
		}
	}
	return opts, nil
}

// write prints the table unless a report goes to standard output, then
// writes each requested file.
func (c *compareFlags) write(rep *observe.Report) error {
	outs := []struct {
		path  string
		write func(io.Writer, *observe.Report) error
	}{{c.jsonOut, observe.WriteJSON}, {c.csvOut, observe.WriteCSV}, {c.mdOut, observe.WriteMarkdown}}
	toStdout := false
	for _, o := range outs {
		toStdout = toStdout || o.path == "-"
	}
	if !toStdout {
		if err := (observe.TableOptions{Wide: c.wide}).WriteTable(os.Stdout, rep); err != nil {
			return err
		}
	}
	var errs []error
	for _, o := range outs {
		if o.path != "" {
			errs = append(errs, writeTo(o.path, rep, o.write))
		}
	}
	return errors.Join(errs...)
}

func writeTo(path string, rep *observe.Report, write func(io.Writer, *observe.Report) error) error {
	if path == "-" {
		return write(os.Stdout, rep)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 64<<10)
	if err := write(w, rep); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}
