package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/echlab/echlab/server"
)

func init() {
	register(command{name: "split", summary: "run the split-mode ECH relay: decrypt the outer ClientHello, route by inner SNI", run: runSplit})
}

// splitRouteFlags collects repeated --route name=host:port flags.
type splitRouteFlags []string

func (r *splitRouteFlags) String() string     { return strings.Join(*r, ",") }
func (r *splitRouteFlags) Set(v string) error { *r = append(*r, v); return nil }

func runSplit(args []string) error {
	fs := newFlags("split", "", "Run the client-facing server of ECH split mode: read the ClientHelloOuter, open it with\n"+
		"the key set, and forward the ClientHelloInner to the backend its inner SNI routes to\n"+
		"(then relay bytes both ways, never seeing plaintext). A crypto/tls backend (e.g.\n"+
		"'echlab server --baseline') confirms ECH itself. ClientHellos that do not decrypt go to\n"+
		"an in-process server for the public name that sends retry configs; ClientHellos\n"+
		"without ECH are passed through by their plain SNI.")
	addr := fs.String("addr", "127.0.0.1:0", "TCP listen address; port 0 picks a free one")
	public := fs.String("public", "public.lab.test", "client-facing name (ECHConfig public_name)")
	pkiDir := fs.String("pki", "pki", "folder of the lab CA (created if missing)")
	keys := fs.String("keys", "keys-split", "ECH key set folder (echlab keygen; one key is made if missing)")
	trial := fs.Bool("trial-decrypt", false, "also try keys whose config id differs")
	logFile := fs.String("log", "-", "connection log file (JSON lines, appended); - is stdout, empty is none")
	var routes splitRouteFlags
	fs.Var(&routes, "route", "NAME=HOST:PORT backend for a server name, or *=HOST:PORT for all others (repeatable)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 || len(routes) == 0 {
		fs.Usage()
		return errUsage
	}
	rt, err := server.ParseRoutes(routes.String())
	if err != nil {
		return err
	}
	ca, logW, closeLog, err := serverOpen(*pkiDir, *logFile)
	if err != nil {
		return err
	}
	defer closeLog()
	ks, err := serverLoadKeys(*keys, *public)
	if err != nil {
		return err
	}
	wait := stopSignals()
	sp, err := server.StartSplit(server.SplitConfig{Addr: *addr, Keys: ks, TrialDecrypt: *trial, Routes: rt,
		PublicName: *public, CA: ca, Log: logW})
	if err != nil {
		return err
	}
	defer sp.Close()
	fmt.Fprintf(os.Stderr, "echlab split: %s, routes %s, public %s at %s\n", sp.Addr(), rt, *public, sp.Public().Addr())
	serverPrintECH(ks)
	return wait()
}
