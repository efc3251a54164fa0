package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/echlab/echlab/internal/watch"
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
		"'echlab server --baseline') confirms ECH itself; with the same --front-secret it also\n"+
		"logs it as accepted. ClientHellos the relay does not open go to an in-process server for\n"+
		"the public name that can only reject ECH and send retry configs; ClientHellos without\n"+
		"ECH are passed through by their plain SNI. A malformed ClientHello, a ClientHelloInner\n"+
		"sent in the clear or a name without a route gets a TLS alert. The --keys folder is followed as by\n"+
		"'echlab server' (checked on every handshake and every --poll). Runs until SIGINT or SIGTERM.")
	addr := fs.String("addr", defaultSplitAddr, "TCP listen address; port 0 picks a free one")
	public := fs.String("public", "public.lab.test", "client-facing name (ECHConfig public_name)")
	pkiDir := fs.String("pki", "pki", "folder of the lab CA (created if missing)")
	keys := fs.String("keys", "keys-split", "ECH key set folder (echlab keygen; one key is made if missing)")
	trial := fs.Bool("trial-decrypt", false, "also try keys whose config id differs")
	poll := fs.Duration("poll", watch.DefaultInterval, "how often the --keys folder is checked for a rotation by another process")
	logFile := fs.String("log", "", "connection log file (JSON lines, appended); - is stdout (the ech= lines go there too), empty is none")
	frontSecret := fs.String("front-secret", "", "secret shared with the backends (created 0600 with 32 random bytes if\n"+
		"missing): every forwarded connection starts with a PROXY v2 header carrying the client\n"+
		"address and an HMAC'd ECH verdict; give the backends the same file")
	idle := fs.Duration("idle-timeout", server.DefaultIdleTimeout, "close both sides of a relayed connection after this long with no bytes either way")
	read := fs.Duration("read-timeout", server.DefaultHelloTimeout, "bound on reading a ClientHello (and a backend's ServerHello)")
	var routes splitRouteFlags
	fs.Var(&routes, "route", "NAME=HOST:PORT backend for a server name, or *=HOST:PORT for all others (repeatable);\n"+
		"NAME=unix:PATH forwards over a Unix socket to a backend on this host (echlab server --addr unix:PATH)")
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
	serverGC()
	ca, logW, closeLog, err := serverOpen(*pkiDir, *logFile)
	if err != nil {
		return err
	}
	defer closeLog()
	ks, err := serverLoadKeys(*keys, *public)
	if err != nil {
		return err
	}
	wait := stopSignals("split")
	var secret []byte
	if *frontSecret != "" {
		if secret, err = server.LoadFrontSecret(*frontSecret); err != nil {
			return err
		}
	}
	sp, err := server.StartSplit(server.SplitConfig{Addr: *addr, Keys: ks, TrialDecrypt: *trial, Routes: rt,
		PublicName: *public, CA: ca, Log: logW, FrontSecret: secret, IdleTimeout: *idle, ReadTimeout: *read})
	if err != nil {
		return err
	}
	defer sp.Close()
	kw, err := serverWatchKeys("split", ks, *keys, *poll, nil)
	if err != nil {
		return err
	}
	defer kw.Close()
	fmt.Fprintf(os.Stderr, "echlab split: %s, routes %s, public %s at %s\n", sp.Addr(), rt, *public, sp.Public().Addr())
	serverPrintECH(ks)
	return wait()
}
