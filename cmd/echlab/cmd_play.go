package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/echlab/echlab/internal/pki"
	"github.com/echlab/echlab/lab"
)

func init() {
	register(command{name: "play", summary: "client runner: play the scenario matrix against remote servers through a resolver", run: runPlay})
}

type playFlags struct {
	out, resolverIP, pki, ca, scenarios, transports, waitFile, doneFile string
	dns                                                                 listFlag
	hold                                                                bool
	cfg                                                                 lab.PlayConfig
}

func newPlayFlags() (*flag.FlagSet, *playFlags) {
	fs := newFlags("play", "", "Play the scenario matrix against remote servers (the docker lab's client runner):\n"+
		"discover through the resolver URLs, fetch with ECH, and write client.jsonl, scenarios.jsonl\n"+
		"and sslkeylog.txt to --out. Scenarios: "+strings.Join(lab.PlayScenarios, ",")+
		"\n(default "+strings.Join(lab.PlayDefault, ",")+"). Exit status 1 when a case fails.")
	f := &playFlags{}
	fs.StringVar(&f.out, "out", "out", "output folder")
	fs.StringVar(&f.resolverIP, "resolver", "", "resolver IP: udp://IP:53, tls://IP:853, https://IP/dns-query, h3://IP/dns-query, quic://IP:853")
	fs.Var(&f.dns, "dns", "TRANSPORT=URL resolver URL (do53, dot, doh, doh3, doq; repeatable; overrides --resolver)")
	fs.StringVar(&f.pki, "pki", "pki", "folder of the lab CA: DIR/ca.crt is trusted (this or --ca is required)")
	fs.StringVar(&f.ca, "ca", "", caFlagUsage)
	fs.StringVar(&f.scenarios, "scenarios", "", "comma-separated scenarios")
	fs.StringVar(&f.transports, "transports", "", "DNS transports of ech-shared (default every resolver URL)")
	fs.StringVar(&f.cfg.SecretName, "secret", lab.SecretName, "name behind ECH on the shared-mode server")
	fs.StringVar(&f.cfg.SplitName, "split-name", "hidden.lab.test", "name behind ECH on the split-mode backend")
	fs.StringVar(&f.cfg.BaselineAddr, "baseline", "", "IP:port of the baseline server (the baseline scenario fetches --secret there)")
	fs.StringVar(&f.cfg.FallbackAddr, "fallback", "", "IP:port resolver-down-fallback connects to once DNS failed")
	fs.DurationVar(&f.cfg.ReadyTimeout, "ready-timeout", 90*time.Second, "wait this long for the resolver and servers (0: do not wait)")
	fs.DurationVar(&f.cfg.CaseTimeout, "case-timeout", 15*time.Second, "timeout of one case")
	fs.DurationVar(&f.cfg.RotationWait, "rotation-wait", 120*time.Second, "stale-retry: how long to wait for a rotation and the rejection")
	fs.StringVar(&f.waitFile, "wait-file", "", "wait (up to --ready-timeout) for this file, e.g. the observer's ready file")
	fs.StringVar(&f.doneFile, "done-file", "", "write 'ok' or the error to this file when done")
	fs.BoolVar(&f.hold, "hold", false, "keep running after the matrix until SIGINT or SIGTERM (keeps a shared network namespace\n"+
		"up); the exit status is still the matrix's")
	return fs, f
}

func runPlay(args []string) error {
	fs, f := newPlayFlags()
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	if err := f.config(); err != nil {
		return err
	}
	ctx, release := signalContext("play")
	defer release()
	err := playWaitFile(ctx, f.waitFile, f.cfg.ReadyTimeout)
	if err == nil {
		_, err = lab.Play(ctx, f.cfg)
	}
	if f.doneFile != "" {
		status := "ok\n"
		if err != nil {
			status = "failed: " + err.Error() + "\n"
		}
		if werr := os.WriteFile(f.doneFile, []byte(status), 0o644); werr != nil {
			err = errors.Join(err, werr)
		}
	}
	if f.hold && ctx.Err() == nil {
		if err != nil {
			fmt.Fprintln(os.Stderr, "echlab play:", err)
			err = reportedError{err}
		}
		fmt.Fprintln(os.Stderr, "echlab play: done; holding until SIGINT or SIGTERM")
		<-ctx.Done()
	}
	return err
}

// config fills f.cfg from the flags.
func (f *playFlags) config() error {
	pool, found, err := trustPool(f.pki, f.ca)
	if err != nil {
		return err
	}
	if !found {
		return usageError("play", "no lab CA: %s does not exist; give --pki DIR (holding ca.crt) or --ca FILE",
			filepath.Join(f.pki, pki.CACertFile))
	}
	if err := checkTransports(splitList(f.transports), false); err != nil {
		return usageError("play", "%v", err)
	}
	f.cfg.OutDir, f.cfg.RootCAs, f.cfg.Progress = f.out, pool, os.Stderr
	f.cfg.Scenarios, f.cfg.Transports = splitList(f.scenarios), splitList(f.transports)
	f.cfg.DNS = map[string]string{}
	if ip := f.resolverIP; ip != "" {
		f.cfg.DNS[lab.DNSDo53] = "udp://" + net.JoinHostPort(ip, "53")
		f.cfg.DNS[lab.DNSDoT] = "tls://" + net.JoinHostPort(ip, "853")
		f.cfg.DNS[lab.DNSDoH] = "https://" + net.JoinHostPort(ip, "443") + "/dns-query"
		f.cfg.DNS[lab.DNSDoH3] = "h3://" + net.JoinHostPort(ip, "443") + "/dns-query"
		f.cfg.DNS[lab.DNSDoQ] = "quic://" + net.JoinHostPort(ip, "853")
	}
	for _, d := range f.dns {
		t, u, ok := strings.Cut(d, "=")
		if !ok || u == "" {
			return fmt.Errorf("--dns %q: want TRANSPORT=URL", d)
		}
		f.cfg.DNS[t] = u
	}
	if len(f.cfg.DNS) == 0 {
		return errors.New("play: give --resolver IP or --dns TRANSPORT=URL")
	}
	return nil
}

// playWaitFile waits until name exists (no wait when name is empty).
func playWaitFile(ctx context.Context, name string, limit time.Duration) error {
	if name == "" {
		return nil
	}
	deadline := time.Now().Add(max(limit, 5*time.Second))
	for {
		if _, err := os.Stat(name); err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("play: %s did not appear within %v", name, limit)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
