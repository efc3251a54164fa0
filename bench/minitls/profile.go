package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"time"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/internal/pki"
	"github.com/echlab/echlab/server"
)

// profile runs an echlab server in this process under load and writes a
// CPU profile: where a handshake's server time goes (the clients' share
// shows under crypto/tls's client functions and minitls.handshake).
func profile(args []string) error {
	fs := flag.NewFlagSet("profile", flag.ContinueOnError)
	mode := fs.String("mode", "shared", "shared or split")
	pkiDir := fs.String("pki", "pki", "lab CA folder")
	keys := fs.String("keys", "", "ECH key set folder")
	useECH := fs.Bool("ech", true, "clients use ECH")
	out := fs.String("out", "cpu.pprof", "CPU profile file")
	conns := fs.Int("conns", 8, "concurrent clients")
	dur := fs.Duration("duration", 5*time.Second, "how long to run")
	logFile := fs.String("log", os.DevNull, "connection log file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	addr, stop, err := startInProcess(*mode, *pkiDir, *keys, *logFile)
	if err != nil {
		return err
	}
	defer stop()
	clientKeys := *keys
	if !*useECH {
		clientKeys = ""
	}
	cfg, err := clientConfig(*pkiDir, clientKeys, "secret.lab.test")
	if err != nil {
		return err
	}
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		return err
	}
	r, err := run(addr, cfg, clientKeys != "", *conns, *dur, nil)
	pprof.StopCPUProfile()
	if err != nil {
		return err
	}
	fmt.Printf("mode=%s ech=%v handshakes=%d rate=%.0f errors=%d profile=%s\n",
		*mode, *useECH, r.n, float64(r.n)/r.secs, r.errs, *out)
	return nil
}

// startInProcess starts the server of mode and returns its address.
func startInProcess(mode, pkiDir, keys, logFile string) (string, func(), error) {
	ca, err := pki.LoadOrCreate(pkiDir)
	if err != nil {
		return "", nil, err
	}
	lf, err := os.OpenFile(logFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return "", nil, err
	}
	var ks *ech.KeySet
	if keys != "" {
		if ks, err = ech.LoadKeySet(keys); err != nil {
			return "", nil, err
		}
	}
	switch mode {
	case "shared":
		cfg := server.Config{CA: ca, Log: lf}
		if ks != nil {
			cfg.Keys = server.UsableKeys(ks)
		}
		s, err := server.Start(cfg)
		if err != nil {
			return "", nil, err
		}
		return s.Addr(), func() { s.Close(); lf.Close() }, nil
	case "split":
		return startSplit(ca, ks, lf)
	}
	return "", nil, fmt.Errorf("unknown mode %q", mode)
}

// startSplit starts a front with a front secret before a baseline
// backend that shares it.
func startSplit(ca *pki.CA, ks *ech.KeySet, lf io.WriteCloser) (string, func(), error) {
	secret, err := server.NewFrontSecret()
	if err != nil {
		return "", nil, err
	}
	b, err := server.Start(server.Config{CA: ca, Log: lf, Mode: "split-backend", FrontSecret: secret})
	if err != nil {
		return "", nil, err
	}
	sp, err := server.StartSplit(server.SplitConfig{Keys: ks, CA: ca, Log: lf, FrontSecret: secret,
		Routes: server.Routes{"*": b.Addr()}})
	if err != nil {
		b.Close()
		return "", nil, err
	}
	return sp.Addr(), func() { sp.Close(); b.Close(); lf.Close() }, nil
}
