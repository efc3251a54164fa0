package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/echlab/echlab/lab/conformance"
)

func init() {
	register(command{name: "conformance", summary: "run the client conformance suite: odd DNS records and servers, a graded table per client", run: runConformance})
}

func runConformance(args []string) error {
	fs := newFlags("conformance", "", "Serve each case of the catalogue on loopback (a resolver publishing its HTTPS records, a\n"+
		"server variant behind a relay that logs every ClientHello), run each client against it, and grade\n"+
		"each cell pass, fail or n.a. against the case's RFC 9849 / RFC 9848 / RFC 9460 expectation.\n"+
		"Writes the table to stdout and conformance.json and conformance.md (with the evidence) to --out.\n\n"+
		"Clients: echlab (echlab's client, fail-closed), go (a plain crypto/tls program), all.\n"+
		"Cases: "+conformance.CaseNames())
	client := fs.String("client", "all", "echlab, go or all")
	cases := fs.String("case", "", "comma-separated cases (default all)")
	out := fs.String("out", "conformance", "output folder")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	var clients []conformance.Client
	switch *client {
	case "all":
		clients = conformance.Clients()
	case string(conformance.ClientEchlab), string(conformance.ClientGo):
		clients = []conformance.Client{conformance.Client(*client)}
	default:
		return usageError("conformance", "--client %q: want echlab, go or all (browser columns are not built yet)", *client)
	}
	selected, err := conformance.SelectCases(splitList(*cases))
	if err != nil {
		return usageError("conformance", "%v", err)
	}
	ctx, release := signalContext("conformance")
	defer release()
	rep, err := conformance.Run(ctx, conformance.Options{Cases: selected, Clients: clients})
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
	fmt.Printf("\nEvidence: %s, %s in %s\n", conformance.MarkdownFile, conformance.JSONFile, *out)
	return nil
}
