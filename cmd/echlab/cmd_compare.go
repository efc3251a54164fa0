package main

import (
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
	keys, esniKeys                              listFlag
	wide                                        bool // every column of the tables
}

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
	fs.BoolVar(&c.wide, "wide", false, "print every column of the tables (addresses, ECH parameters, JA4; wider than 120 columns)")
	fs.StringVar(&c.scenarioMap, "scenario-map", "", "JSON lines of {scenario, client_randoms, dns_ids, proto, client_port, server_port, start, end}\n"+
		"labelling flows, most exact key first (echlab run writes one: scenarios.jsonl)")
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
	rep, err := observe.Compare(f, opts)
	if err != nil {
		return err
	}
	return c.write(rep)
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
	if err := write(f, rep); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}
