package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/internal/pki"
)

// serve runs the minimal server until SIGINT or SIGTERM.
func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "TCP listen address")
	pkiDir := fs.String("pki", "pki", "lab CA folder")
	keys := fs.String("keys", "", "ECH key set folder; empty serves without ECH")
	names := fs.String("names", "public.lab.test,secret.lab.test", "names on the certificate")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := minimalConfig(*pkiDir, *keys, *names)
	if err != nil {
		return err
	}
	ln, err := tls.Listen("tcp", *addr, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "minitls: tcp %s\n", ln.Addr())
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok\n") //nolint:errcheck
	}), ErrorLog: log.New(io.Discard, "", 0)}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
		<-sig
		srv.Close()
	}()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}

// minimalConfig is one certificate for every name and, with a key folder,
// its keys as static EncryptedClientHelloKeys.
func minimalConfig(pkiDir, keys, names string) (*tls.Config, error) {
	ca, err := pki.LoadOrCreate(pkiDir)
	if err != nil {
		return nil, err
	}
	cert, err := ca.Issue("minitls", splitComma(names), false)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}
	if keys == "" {
		return cfg, nil
	}
	ks, err := ech.LoadKeySet(keys)
	if err != nil {
		return nil, err
	}
	if cfg.EncryptedClientHelloKeys, err = ks.TLSKeys(); err != nil {
		return nil, err
	}
	cfg.MinVersion = tls.VersionTLS13
	return cfg, nil
}
