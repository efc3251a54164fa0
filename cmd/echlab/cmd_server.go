package main

import (
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/internal/pki"
	"github.com/echlab/echlab/internal/watch"
	"github.com/echlab/echlab/server"
)

func init() {
	register(command{name: "server", summary: "run the ECH HTTPS server (shared mode, HTTP/1.1+2+3) or the baseline", run: runServer})
}

func runServer(args []string) error {
	fs := newFlags("server", "", "Serve the lab site over HTTPS with ECH (shared mode): the --keys folder is checked on every\n"+
		"handshake and every --poll, so a rotation by another process (echlab keygen --rotate) applies\n"+
		"from the next handshake; a folder caught half-written or broken is reported and read again at the next\n"+
		"poll while the last good keys stay in use. Keys past their grace are neither accepted nor\n"+
		"sent as retry configs. Rejected ECH gets retry configs, and /, /cdn-cgi/trace and\n"+
		"/api/conn say what the server saw. Every connection is logged as a JSON line to --log.\n"+
		"Without --keys (or with --baseline) the same site is served without ECH. Runs until SIGINT or SIGTERM.")
	addr := fs.String("addr", defaultServerAddr, "TCP (and, with --h3, UDP) listen address; port 0 picks a free one;\n"+
		"unix:PATH listens on a Unix socket (0600) instead, e.g. as a split front's backend on the same host")
	public := fs.String("public", "public.lab.test", "client-facing name (ECHConfig public_name)")
	names := fs.String("names", "secret.lab.test", "comma-separated backend names served behind ECH")
	pkiDir := fs.String("pki", "pki", "folder of the lab CA (created if missing)")
	keys := fs.String("keys", "", "ECH key set folder (echlab keygen; one key is made if missing)")
	baseline := fs.Bool("baseline", false, "serve without ECH even if --keys is set")
	rotate := fs.Duration("rotate-every", 0, "rotate the ECH key on this schedule (0: never)")
	grace := fs.Duration("grace", 0, "how long a replaced key stays accepted (default 2×--rotate-every)")
	poll := fs.Duration("poll", watch.DefaultInterval, "how often the --keys folder is checked for a rotation by another process")
	mtls := fs.Bool("mtls", false, "require client certificates issued by the lab CA")
	hrr := fs.Bool("hrr", false, "force a HelloRetryRequest on every handshake (prefer P-256 only)")
	h3 := fs.Bool("h3", false, "also serve HTTP/3 over QUIC and advertise it with Alt-Svc")
	logFile := fs.String("log", "", "connection log file (JSON lines, appended); - is stdout (the ech= lines go there too), empty is none")
	frontSecret := fs.String("front-secret", "", "secret shared with the split front(s) before this server (created 0600 with\n"+
		"32 random bytes if missing): accept their PROXY v2 header, log ECH they opened as accepted")
	idle := fs.Duration("idle-timeout", server.DefaultIdleTimeout, "close a connection idle this long: before its first request, between\n"+
		"requests, HTTP/2 or HTTP/3 with no stream")
	read := fs.Duration("read-timeout", server.DefaultReadTimeout, "cut off a request whose headers (from their first byte), then body, take longer")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	serverGC()
	ca, logW, closeLog, err := serverOpen(*pkiDir, *logFile)
	if err != nil {
		return err
	}
	defer closeLog()
	cfg := server.Config{Addr: *addr, PublicName: *public, Names: splitList(*names), CA: ca,
		RequireClientCert: *mtls, ForceHRR: *hrr, HTTP3: *h3, Log: logW, IdleTimeout: *idle, ReadTimeout: *read}
	if *frontSecret != "" {
		if cfg.FrontSecret, err = server.LoadFrontSecret(*frontSecret); err != nil {
			return err
		}
	}
	var ks *ech.KeySet
	if *keys != "" && !*baseline {
		if ks, err = serverLoadKeys(*keys, *public); err != nil {
			return err
		}
		cfg.Keys = server.UsableKeys(ks)
	}
	wait := stopSignals("server")
	srv, err := server.Start(cfg)
	if err != nil {
		return err
	}
	defer srv.Close()
	listen := "tcp " + srv.Addr()
	if strings.HasPrefix(srv.Addr(), server.UnixPrefix) {
		listen = srv.Addr()
	}
	fmt.Fprintf(os.Stderr, "echlab server: https://%s/ (%s", *public, listen)
	if srv.UDPAddr() != "" {
		fmt.Fprintf(os.Stderr, ", h3 udp %s", srv.UDPAddr())
	}
	fmt.Fprintf(os.Stderr, "), CA %s\n", filepath.Join(*pkiDir, pki.CACertFile))
	if ks != nil {
		serverPrintECH(ks)
		// Without a schedule the folder belongs to whoever rotates it
		// (echlab keygen --rotate): the server only expires keys in memory
		// and never writes the folder, so it cannot overwrite a rotation
		// it has not read yet.
		rotDir := *keys
		if *rotate == 0 {
			rotDir = ""
		}
		rot, err := serverRotate(ks, rotDir, *rotate, *grace)
		if err != nil {
			return err
		}
		defer rot.Close()
		kw, err := serverWatchKeys("server", ks, *keys, *poll, rot)
		if err != nil {
			return err
		}
		defer kw.Close()
	}
	return wait()
}

// serverGC makes garbage collections of echlab server and echlab split
// four times rarer unless GOGC says otherwise: a server's heap is small,
// so with the default GOGC it is collected every hundred handshakes or
// so. The binary no longer carries gopacket's 7 MB of pointer-holding
// globals that made each collection costly (4% of the CPU), but the
// default still costs 2-3% more CPU per handshake (bench/handshakes.sh,
// 2026-12-05: shared/noECH 434 against 425 us, baseline 432 against 418,
// shared/ECH 560 against 544); the heap it lets grow is a few MB.
func serverGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
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
// each new ech= value. The new keys are like the set's published ones.
func serverRotate(ks *ech.KeySet, dir string, every, grace time.Duration) (*server.Rotator, error) {
	return server.StartRotator(server.RotatorConfig{Keys: ks, Dir: dir, Every: every, Grace: grace,
		OnRotate: func(k *ech.Key, err error) {
			if err != nil {
				fmt.Fprintln(os.Stderr, "echlab server: rotation:", err)
				return
			}
			fmt.Fprintf(os.Stderr, "echlab server: rotated to config id %d\n", k.Config.ConfigID)
			serverPrintECH(ks)
		}})
}

// serverWatchKeys follows rotations of dir by other processes into ks
// (rot, if any, is this process's own rotator), printing the new ech=
// value after each change and why a reload failed.
func serverWatchKeys(cmd string, ks *ech.KeySet, dir string, poll time.Duration, rot *server.Rotator) (*server.KeyWatcher, error) {
	return server.WatchKeys(server.KeyWatchConfig{Keys: ks, Dir: dir, Interval: poll, Rotator: rot,
		OnReload: func(d ech.KeySetDiff, err error) {
			if err != nil {
				fmt.Fprintf(os.Stderr, "echlab %s: %v (the last good keys stay in use)\n", cmd, err)
				return
			}
			fmt.Fprintf(os.Stderr, "echlab %s: key set %s reloaded: %d keys added, %d removed, %d changed\n",
				cmd, dir, d.Added, d.Removed, d.Changed)
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

// serverPrintECH prints the published ECHConfigList as an ech= value on
// stdout, as keygen does: what the server serves, for the resolver's zone.
func serverPrintECH(ks *ech.KeySet) {
	if list, err := ks.ConfigList(); err == nil {
		fmt.Fprintf(os.Stdout, "ech=%s\n", base64.StdEncoding.EncodeToString(list))
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

// Default listen addresses of echlab server and echlab split: loopback,
// unprivileged, and apart from the resolver's ports, so that the three run
// side by side without flags.
const (
	defaultServerAddr = "127.0.0.1:4443" // TCP, and UDP with --h3
	defaultSplitAddr  = "127.0.0.1:4444"
)
