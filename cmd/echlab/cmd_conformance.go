package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/echlab/echlab/lab/conformance"
	"github.com/echlab/echlab/lab/interop"
)

func init() {
	register(command{name: "conformance", summary: "run the client conformance suite: odd DNS records and servers, a graded table per client", run: runConformance})
}

func runConformance(args []string) error {
	fs := newFlags("conformance", "", "Serve each case of the catalogue on loopback (a resolver publishing its HTTPS records, a\n"+
		"server variant behind a relay that logs every ClientHello), run each client against it, and grade\n"+
		"each cell pass, fail or n.a. against the case's RFC 9849 / RFC 9848 / RFC 9460 expectation.\n"+
		"Writes the table to stdout and conformance.json and conformance.md (with the evidence) to --out,\n"+
		"and each cell's flows as --out/pcap/CASE-CLIENT.pcapng (named in the cell's evidence).\n"+
		"The exit status is 0 whenever the suite ran, failed cells included; with --strict it is 1\n"+
		"when a cell of a MUST case fails (the cells are named on stderr).\n\n"+
		"Clients: echlab (echlab's client, fail-closed), go (a plain crypto/tls program), chromium and\n"+
		"firefox (headless Chromium and Firefox ESR: as root, re-run in a loopback-only network namespace,\n"+
		"their profiles, NetLog and MOZ_LOG kept under --out/run/browsers), browsers (both), all (all four).\n"+
		"Cases: "+conformance.CaseNames())
	client := fs.String("client", "echlab,go", "comma-separated clients: echlab, go, chromium, firefox; browsers; all")
	cases := fs.String("case", "", "comma-separated cases (default all)")
	out := fs.String("out", "conformance", "output folder")
	origin := fs.Bool("origin-target", false, "also run each case whose records use the default TargetName with TargetName\n"+
		"secret.lab.test (NAME"+conformance.OriginTargetSuffix+"): the browsers use no record whose TargetName is another name")
	strict := fs.Bool("strict", false, "exit with status 1 when any cell of a MUST case fails")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	clients, err := conformanceClients(*client)
	if err != nil {
		return err
	}
	selected, err := conformance.SelectCases(splitList(*cases))
	if err != nil {
		return usageError("conformance", "%v", err)
	}
	if *origin {
		selected = append(selected, conformance.OriginTarget(selected)...)
	}
	o := conformance.Options{Cases: selected, Clients: clients, OutDir: *out}
	if slices.ContainsFunc(clients, conformance.Client.IsBrowser) {
		if !interop.InNetns() {
			return interop.Reexec(os.Args[1:])
		}
		if err := interop.Isolate(); err != nil {
			return err
		}
		o.Dir = filepath.Join(*out, "run")
		o.Progress = func(cr conformance.CaseResult) { fmt.Fprintln(os.Stderr, "conformance:", cr.Line()) }
	}
	ctx, release := signalContext("conformance")
	defer release()
	rep, err := conformance.Run(ctx, o)
	if err != nil {
		return err
	}
	rep.WriteTable(os.Stdout) //nolint:errcheck // stdout
	if err := rep.WriteFiles(*out); err != nil {
		return err
	}
	if f := rep.Failures(); len(f) > 0 {
		fmt.Printf("\n%d failed cells: %s\n", len(f), strings.Join(f, ", "))
	}
	fmt.Printf("\nEvidence: %s, %s and %s/ in %s\n", conformance.MarkdownFile, conformance.JSONFile, conformance.CaptureDir, *out)
	if *strict {
		return strictError(rep)
	}
	return nil
}

// strictError is --strict's verdict: an error naming the failed cells of
// MUST cases (exit status 1), or nil.
func strictError(rep *conformance.Report) error {
	f := rep.MustFailures()
	if len(f) == 0 {
		return nil
	}
	return fmt.Errorf("conformance: --strict: %d failed cells at level MUST: %s", len(f), strings.Join(f, ", "))
}

// conformanceClients parses --client: a comma-separated list of client
// names, "browsers" (chromium, firefox) and "all" (every client).
func conformanceClients(list string) ([]conformance.Client, error) {
	var out []conformance.Client
	add := func(cs ...conformance.Client) {
		for _, c := range cs {
			if !slices.Contains(out, c) {
				out = append(out, c)
			}
		}
	}
	for _, name := range splitList(list) {
		switch c := conformance.Client(name); {
		case name == "all":
			add(conformance.KnownClients()...)
		case name == "browsers":
			add(conformance.BrowserClients()...)
		case slices.Contains(conformance.KnownClients(), c):
			add(c)
		default:
			return nil, usageError("conformance", "--client %q: want echlab, go or all (or a comma-separated list of echlab, go, chromium, firefox, browsers)", list)
		}
	}
	if len(out) == 0 {
		return nil, usageError("conformance", "--client %q: want echlab, go or all", list)
	}
	return out, nil
}
