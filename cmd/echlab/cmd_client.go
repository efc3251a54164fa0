package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/echlab/echlab/client"
	"github.com/echlab/echlab/resolver"
)

func init() {
	register(command{name: "client", summary: "fetch an https:// URL with ECH (DNS discovery, retry, fallback) and report", run: runClient})
}

// clientFlags are the flags of echlab client.
type clientFlags struct {
	dns, echConfig, connectTo, mode, pki, ca, cert, key, alpn, groups, sni, keylog string
	fallback, noRetry, h3, insecure, jsonOut, body                                 bool
	connectTimeout, handshakeTimeout, timeout                                      time.Duration
	maxBody                                                                        int64
}

func newClientFlags() (*flag.FlagSet, *clientFlags) {
	fs := newFlags("client", "URL", "Fetch URL (https://) with Encrypted Client Hello. The ECHConfigList comes from the\n"+
		"HTTPS record (through --dns, never the system resolver) or from --ech-config. A name is\n"+
		"looked up through --dns unless --connect-to gives the address.")
	c := &clientFlags{}
	fs.StringVar(&c.dns, "dns", "", "resolver URL: udp://IP:port, tcp://, tls://, https://IP/dns-query, h3://, quic://")
	fs.StringVar(&c.echConfig, "ech-config", "", "ECHConfigList as base64, ech=…, or a file (raw, base64 or ECH PEM); skips the HTTPS record's ech")
	fs.StringVar(&c.connectTo, "connect-to", "", "connect to IP or IP:port instead of the looked-up address")
	fs.StringVar(&c.mode, "mode", "ech", "ech, baseline (no ECH) or grease (GREASE ECH, first server message only)")
	fs.BoolVar(&c.fallback, "fallback", false, "fall back to a plaintext SNI when ECH cannot be used (default: fail closed)")
	fs.BoolVar(&c.noRetry, "no-retry", false, "do not retry with the server's retry configs")
	fs.BoolVar(&c.h3, "h3", false, "use QUIC and HTTP/3")
	fs.StringVar(&c.pki, "pki", "pki", pkiFlagUsage+" (server and DoT/DoH/DoQ resolver)")
	fs.StringVar(&c.ca, "ca", "", caFlagUsage)
	fs.StringVar(&c.cert, "cert", "", "client certificate (PEM) for mTLS")
	fs.StringVar(&c.key, "key", "", "client private key (PEM) for mTLS")
	fs.StringVar(&c.alpn, "alpn", "", "ALPN list, comma separated (default h2,http/1.1, or h3)")
	fs.StringVar(&c.groups, "groups", "", "key exchange groups: x25519,p256,p384,p521,x25519mlkem768")
	fs.StringVar(&c.sni, "sni", "", "true (inner) server name; default the URL host")
	fs.BoolVar(&c.insecure, "insecure", false, "do not verify the server certificate (the public name's is still verified on ECH rejection)")
	fs.StringVar(&c.keylog, "keylog", os.Getenv("SSLKEYLOGFILE"), "append TLS secrets to this file (default $SSLKEYLOGFILE)")
	fs.DurationVar(&c.connectTimeout, "connect-timeout", 5*time.Second, "TCP connect timeout per address")
	fs.DurationVar(&c.handshakeTimeout, "handshake-timeout", 5*time.Second, "TLS/QUIC handshake timeout")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "timeout of the whole fetch")
	fs.Int64Var(&c.maxBody, "max-body", 1<<20, "body bytes to read at most")
	fs.BoolVar(&c.jsonOut, "json", false, "print the result as JSON")
	fs.BoolVar(&c.body, "body", false, "print the response body after the table")
	return fs, c
}

func runClient(args []string) error {
	fs, c := newClientFlags()
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errUsage
	}
	opts, closeAll, err := c.options()
	defer closeAll()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, ferr := client.Fetch(ctx, fs.Arg(0), opts)
	if c.jsonOut {
		res.WriteJSON(os.Stdout)
	} else {
		res.Error = "" // said once, on stderr, by main
		res.WriteTable(os.Stdout)
		if c.body && len(res.Body) > 0 {
			fmt.Printf("\n%s\n", res.Body)
		}
	}
	return clientHint(ferr)
}

// clientHint adds to a failed fetch's error what to do, in flag terms.
func clientHint(err error) error {
	var ce *client.Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, client.ErrNoResolver) && errors.Is(err, client.ErrNoConfig):
		return fmt.Errorf("%w; give --dns URL to read the HTTPS record, or --ech-config VALUE", err)
	case errors.Is(err, client.ErrNoResolver):
		return fmt.Errorf("%w; give --dns URL, or --connect-to IP[:PORT]", err)
	case errors.Is(err, client.ErrNoConfig):
		return fmt.Errorf("%w; give --ech-config VALUE, or --fallback to allow a plaintext SNI", err)
	case errors.As(err, &ce) && ce.Class == client.ClassCertificate:
		return fmt.Errorf("%w; trust the server's CA with --pki DIR or --ca FILE", err)
	}
	return err
}

// options turns the flags into client.Options; the returned func closes
// the key log and the resolver.
func (c *clientFlags) options() (client.Options, func(), error) {
	var closers []io.Closer
	closeAll := func() {
		for _, cl := range closers {
			cl.Close()
		}
	}
	o := client.Options{Mode: client.Mode(c.mode), Policy: client.PolicyFailClosed, ConnectTo: c.connectTo,
		ServerName: c.sni, InsecureSkipVerify: c.insecure, HTTP3: c.h3, NoRetry: c.noRetry,
		ConnectTimeout: c.connectTimeout, HandshakeTimeout: c.handshakeTimeout, Timeout: c.timeout, MaxBody: c.maxBody}
	if c.fallback {
		o.Policy = client.PolicyFallback
	}
	if err := c.tlsOptions(&o); err != nil {
		return o, closeAll, err
	}
	if c.keylog != "" {
		f, err := os.OpenFile(c.keylog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return o, closeAll, fmt.Errorf("client: key log: %w", err)
		}
		closers, o.KeyLog = append(closers, f), f
	}
	if c.dns != "" {
		r, err := resolver.NewClient(c.dns, resolver.ClientOptions{RootCAs: o.RootCAs, Timeout: c.timeout})
		if err != nil {
			return o, closeAll, err
		}
		closers, o.Resolver = append(closers, r), r
	}
	return o, closeAll, nil
}

// tlsOptions sets the trust anchors, client certificate, ALPN, key share
// groups and ECHConfigList of o from the flags.
func (c *clientFlags) tlsOptions(o *client.Options) error {
	var err error
	if o.RootCAs, _, err = trustPool(c.pki, c.ca); err != nil {
		return err
	}
	if (c.cert == "") != (c.key == "") {
		return fmt.Errorf("client: --cert and --key go together")
	}
	if c.cert != "" {
		pair, err := tls.LoadX509KeyPair(c.cert, c.key)
		if err != nil {
			return fmt.Errorf("client: loading client certificate: %w", err)
		}
		o.Certificates = []tls.Certificate{pair}
	}
	if c.alpn != "" {
		o.ALPN = strings.Split(c.alpn, ",")
	}
	if o.Groups, err = client.ParseGroups(c.groups); err != nil {
		return err
	}
	if c.echConfig != "" {
		if o.ConfigList, err = client.LoadConfigList(c.echConfig); err != nil {
			return err
		}
	}
	return nil
}
