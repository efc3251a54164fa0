package main

import (
	"fmt"
	"path/filepath"

	"github.com/echlab/echlab/internal/pki"
)

func init() {
	register(command{name: "pki", summary: "make the lab CA (or reuse it) and issue server and client certificates", run: runPKI})
}

func runPKI(args []string) error {
	fs := newFlags("pki", "", "Make the lab certificate authority in --pki (ca.crt, ca.key 0600), or reuse the one\n"+
		"there, and issue a server certificate for --server-names/--ips and a client certificate\n"+
		"for --client. The servers and the resolver given the same --pki folder issue their own\n"+
		"certificates from this CA; the clients (client, query, play) trust DIR/ca.crt.")
	out := fs.String("pki", "pki", "folder of the lab CA (created if missing)")
	alias(fs, "out", "pki")
	names := fs.String("server-names", "", "comma-separated DNS names of a server certificate")
	ips := fs.String("ips", "", "comma-separated IP addresses of the server certificate")
	server := fs.String("server", "server", "file name (without .crt/.key) of the server certificate")
	clientName := fs.String("client", "", "common name of a client (mTLS) certificate, written as NAME.crt/NAME.key")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	ca, err := pki.LoadOrCreate(*out)
	if err != nil {
		return err
	}
	fmt.Println("ca", filepath.Join(*out, pki.CACertFile))
	if hosts := append(splitList(*names), splitList(*ips)...); len(hosts) > 0 {
		if err := pkiIssue(ca, *out, *server, hosts[0], hosts, false); err != nil {
			return err
		}
	}
	if *clientName != "" {
		return pkiIssue(ca, *out, *clientName, *clientName, nil, true)
	}
	return nil
}

// pkiIssue issues one certificate and writes it as DIR/FILE.crt and .key.
func pkiIssue(ca *pki.CA, dir, file, cn string, hosts []string, client bool) error {
	cert, err := ca.Issue(cn, hosts, client)
	if err != nil {
		return err
	}
	if err := pki.WriteCertificate(dir, file, cert); err != nil {
		return err
	}
	kind := "server"
	if client {
		kind = "client"
	}
	fmt.Println(kind, filepath.Join(dir, file+".crt"), filepath.Join(dir, file+".key"))
	return nil
}
