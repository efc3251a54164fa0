package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/echlab/echlab/lab/interop"
)

func init() {
	register(command{name: "interop", summary: "run real browsers (Chromium, Firefox ESR) against the lab: interop browsers", run: runInterop})
}

func runInterop(args []string) error {
	if len(args) == 0 || args[0] != "browsers" {
		fmt.Fprintln(os.Stderr, "Usage: echlab interop browsers [flags]\n\nSubcommands:\n  browsers  headless Chromium and Firefox ESR through the lab's DoH to its ECH server")
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return errHelp
		}
		return errUsage
	}
	fs := newFlags("interop browsers", "", "Start the lab (ECH server, DoH resolver) in a network namespace that has only loopback,\n"+
		"run headless Chromium and Firefox ESR on each case (ech, grease, retry, h3) with fresh\n"+
		"profiles, and write results.json, results.txt and the server/query logs to --out.\n"+
		"The handshakes are captured live on lo (capture.pcapng) and compared with the lab's keys\n"+
		"(flows.jsonl, flows.csv, compare.md); a case passes only if the capture agrees.\n"+
		"Needs root (for the namespace and the packet socket), chromium, firefox-esr, certutil\n"+
		"(libnss3-tools) and ethtool.")
	out := fs.String("out", "interop-out", "output directory")
	bs := fs.String("browsers", "chromium,firefox", "comma-separated browsers")
	cs := fs.String("cases", "ech,grease,retry,h3", "comma-separated cases")
	timeout := fs.Duration("timeout", 60*time.Second, "bound of one browser run (with --adversary: 20s unless set)")
	adv := fs.String("adversary", "", "run the browser grid instead: each --grid-rows row loads the ech case against each\n"+
		"comma-separated column of policies (\"none\" first; \"default\": "+strings.Join(interop.DefaultGridColumns, ", ")+");\n"+
		"writes "+interop.GridJSON+" and "+interop.GridMD)
	rows := fs.String("grid-rows", strings.Join(interop.GridRowNames(), ","), "with --adversary: comma-separated browser rows")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	if !interop.InNetns() && (interop.Isolated() != nil || *adv != "") {
		return interop.Reexec(os.Args[1:])
	}
	if err := interop.Isolate(); err != nil {
		return err
	}
	if *adv != "" {
		return runBrowserGrid(fs, *out, *adv, splitList(*rows), *timeout)
	}
	rep, err := interop.Run(interop.Config{Dir: *out, Browsers: splitList(*bs), Cases: splitList(*cs),
		Timeout: *timeout, Progress: os.Stderr})
	if rep != nil {
		rep.Table(os.Stdout) //nolint:errcheck // stdout
	}
	return err
}

// runBrowserGrid runs the browser grid (interop.RunGrid) in the namespace
// and prints its table; "default" is the default columns.
func runBrowserGrid(fs *flag.FlagSet, out, columns string, rows []string, timeout time.Duration) error {
	if columns == "default" {
		columns = ""
	}
	timeoutSet := false
	fs.Visit(func(f *flag.Flag) { timeoutSet = timeoutSet || f.Name == "timeout" })
	if !timeoutSet {
		timeout = 0
	}
	rep, err := interop.RunGrid(interop.GridConfig{Dir: out, Columns: columns, Rows: rows, Timeout: timeout, Progress: os.Stderr})
	if rep != nil {
		rep.Table(os.Stdout) //nolint:errcheck // stdout
	}
	return err
}
