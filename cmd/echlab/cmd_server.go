package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/internal/pki"
	"github.com/echlab/echlab/server"
)

func init() {
	register(command{name: "server", summary: "run the ECH HTTPS server (shared mode, HTTP/1.1+2+3) or the baseline", run: runServer})
}

func runServer(args []string) error {
	fs := newFlags("server", "", "Serve the lab site over HTTPS with ECH (shared mode): the key set in --keys is read on\n"+
		"every handshake, rejected ECH gets retry configs, and /, /cdn-cgi/trace and /api/conn say\n"+
		"what the server saw. Every connection is logged as a JSON line to --log.\n"+
		"Without --keys (or with --baseline) the same site is served without ECH.")
	addr := fs.String("addr", "127.0.0.1:0", "TCP (and, with --h3, UDP) listen address; port 0 picks a free one")
	public := fs.String("public", "public.lab.test", "client-facing name (ECHConfig public_name)")
	names := fs.String("names", "secret.lab.test", "comma-separated backend names served behind ECH")
	pkiDir := fs.String("pki", "pki", "folder of the lab CA (created if missing)")
	keys := fs.String("keys", "", "ECH key set folder (echlab keygen; one key is made if missing)")
	baseline := fs.Bool("baseline", false, "serve without ECH even if --keys is set")
	rotate := fs.Duration("rotate-every", 0, "rotate the ECH key on this schedule (0: never)")
	grace := fs.Duration("grace", 0, "how long a replaced key stays accepted (default 2×--rotate-every)")
	mtls := fs.Bool("mtls", false, "require client certificates issued by the lab CA")
	hrr := fs.Bool("hrr", false, "force a HelloRetryRequest on every handshake (prefer P-256 only)")
	h3 := fs.Bool("h3", false, "also serve HTTP/3 over QUIC and advertise it with Alt-Svc")
	logFile := fs.String("log", "-", "connection log file (JSON lines, appended); - is stdout, empty is none")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	ca, logW, closeLog, err := serverOpen(*pkiDir, *logFile)
	if err != nil {
		return err
	}
	defer closeLog()
	cfg := server.Config{Addr: *addr, PublicName: *public, Names: splitList(*names), CA: ca,
		RequireClientCert: *mtls, ForceHRR: *hrr, HTTP3: *h3, Log: logW}
	var ks *ech.KeySet
	if *keys != "" && !*baseline {
		if ks, err = serverLoadKeys(*keys, *public); err != nil {
			return err
		}
		cfg.Keys = server.UsableKeys(ks)
	}
	wait := stopSignals()
	srv, err := server.Start(cfg)
	if err != nil {
		return err
	}
	defer srv.Close()
	fmt.Fprintf(os.Stderr, "echlab server: https://%s/ (tcp %s", *public, srv.Addr())
	if srv.UDPAddr() != "" {
		fmt.Fprintf(os.Stderr, ", h3 udp %s", srv.UDPAddr())
	}
	fmt.Fprintf(os.Stderr, "), CA %s\n", filepath.Join(*pkiDir, pki.CACertFile))
	if ks != nil {
		serverPrintECH(ks)
		rot, err := serverRotate(ks, *keys, *public, *rotate, *grace)
		if err != nil {
			return err
		}
		defer rot.Close()
	}
	return wait()
}

// serverOpen loads (or creates) the lab CA in pkiDir and opens the
// connection log, as echlab server and echlab split both do first.
func serverOpen(pkiDir, logFile string) (*pki.CA, io.Writer, func(), error) {
	ca, err := pki.LoadOrCreate(pkiDir)
	if err != nil {
		return nil, nil, nil, err
	}
	logW, closeLog, err := serverOpenLog(logFile)
	if err != nil {
		return nil, nil, nil, err
	}
	return ca, logW, closeLog, nil
}

// serverRotate starts rotating ks (saved in dir) every period, printing
// each new ech= value.
func serverRotate(ks *ech.KeySet, dir, public string, every, grace time.Duration) (*server.Rotator, error) {
	return server.StartRotator(server.RotatorConfig{Keys: ks, Dir: dir, Every: every, Grace: grace,
		KeyOptions: ech.KeyOptions{PublicName: public},
		OnRotate: func(k *ech.Key, err error) {
			if err != nil {
				fmt.Fprintln(os.Stderr, "echlab server: rotation:", err)
				return
			}
			fmt.Fprintf(os.Stderr, "echlab server: rotated to config id %d\n", k.Config.ConfigID)
			serverPrintECH(ks)
		}})
}

// serverLoadKeys loads the key set in dir, or makes one key for the
// public name and saves it there.
func serverLoadKeys(dir, public string) (*ech.KeySet, error) {
	if _, err := os.Stat(filepath.Join(dir, ech.KeySetManifest)); err == nil {
		return ech.LoadKeySet(dir)
	}
	k, err := ech.GenerateKey(ech.KeyOptions{PublicName: public})
	if err != nil {
		return nil, err
	}
	ks := &ech.KeySet{}
	ks.Add(k, true)
	return ks, ech.SaveKeySet(dir, ks)
}

// serverPrintECH prints the published ECHConfigList as an ech= value.
func serverPrintECH(ks *ech.KeySet) {
	if list, err := ks.ConfigList(); err == nil {
		fmt.Fprintf(os.Stderr, "ech=%s\n", base64.StdEncoding.EncodeToString(list))
	}
}

// serverOpenLog opens the connection log: "-" is stdout, "" discards.
func serverOpenLog(name string) (io.Writer, func(), error) {
	switch name {
	case "":
		return nil, func() {}, nil
	case "-":
		return os.Stdout, func() {}, nil
	}
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, err
	}
	return f, func() { f.Close() }, nil
}

// stopSignals starts catching SIGINT and SIGTERM. Daemons call it before
// they announce their address, so that a signal sent as soon as the
// address is printed stops them cleanly instead of killing them.
func stopSignals() (wait func() error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	return func() error {
		defer stop()
		<-ctx.Done()
		return nil
	}
}
