package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/echlab/echlab/resolver"
)

func init() {
	register(command{name: "resolver", summary: "serve zone files with ECH in HTTPS records over Do53, DoT, DoH, DoH3 and DoQ", run: runResolver})
}

// Default listener addresses of echlab resolver: loopback, unprivileged.
const (
	defaultDo53    = "127.0.0.1:5353" // UDP and TCP
	defaultDoT     = "127.0.0.1:8853" // TCP
	defaultDoH     = "127.0.0.1:8443" // TCP (HTTP/1.1, HTTP/2) and UDP (HTTP/3)
	defaultDoQ     = "127.0.0.1:8853" // UDP
	defaultMetrics = "127.0.0.1:9153"
)

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

type resolverFlags struct {
	config, cert, key, pki, log, forward   string
	tlsECH                                 string
	udp, tcp, dot, doh, doh3, doq, metrics string
	zones, keySets, publish, certNames     listFlag
	esniKeySets, publishESNI               listFlag
	poll, idleTimeout, readTimeout         time.Duration
}

func newResolverFlags() (*flag.FlagSet, *resolverFlags) {
	fs := newFlags("resolver", "", "Serve zone files authoritatively, publishing ECH key sets in HTTPS records and\n"+
		"republishing them when a key set rotates. Listens on loopback by default; an empty\n"+
		"address (e.g. --doq '') turns a listener off. The encrypted listeners (DoT, DoH, DoH3, DoQ)\n"+
		"get a certificate from the lab CA in --pki (created if missing) unless --cert/--key are given;\n"+
		"with --pki '' and no --cert they are off. Needs at least one --zone (or --config, or --forward).\n"+
		"Runs until SIGINT or SIGTERM.")
	f := &resolverFlags{}
	fs.StringVar(&f.config, "config", "", "JSON configuration file (flags given explicitly override it)")
	fs.Var(&f.zones, "zone", "zone file, FILE or ORIGIN=FILE (repeatable)")
	fs.Var(&f.keySets, "keyset", "key set directory, NAME=DIR (repeatable)")
	fs.Var(&f.publish, "publish", "publish rule NAME,keyset=K[,port=P][,target=T][,alpn=A]...[,ttl=S] (repeatable)")
	fs.Var(&f.esniKeySets, "esni-keyset", "legacy ESNI key directory (echlab esni keygen), NAME=DIR (repeatable)")
	fs.Var(&f.publishESNI, "publish-esni", "publish ESNI keys as TXT _esni.NAME: NAME,keyset=K[,ttl=S] (repeatable)")
	fs.StringVar(&f.udp, "udp", defaultDo53, "Do53 UDP address")
	fs.StringVar(&f.tcp, "tcp", defaultDo53, "Do53 TCP address")
	fs.StringVar(&f.dot, "dot", defaultDoT, "DoT address (needs --pki or --cert/--key)")
	fs.StringVar(&f.doh, "doh", defaultDoH, "DoH address, HTTP/1.1 and HTTP/2 over TCP")
	fs.StringVar(&f.doh3, "doh3", defaultDoH, "DoH address, HTTP/3 over UDP (same as --doh: advertised by Alt-Svc)")
	fs.StringVar(&f.doq, "doq", defaultDoQ, "DoQ address (UDP)")
	fs.StringVar(&f.metrics, "metrics", defaultMetrics, "Prometheus /metrics address (plain HTTP)")
	fs.StringVar(&f.cert, "cert", "", "certificate chain (PEM) for the encrypted listeners")
	fs.StringVar(&f.key, "key", "", "private key (PEM) for --cert")
	fs.StringVar(&f.pki, "pki", "pki", "folder of the lab CA (created if missing) that issues the listeners' certificate")
	fs.StringVar(&f.tlsECH, "tls-ech", "", "key set NAME (from --keyset) whose keys the DoT/DoH/DoH3/DoQ listeners use to accept ECH themselves")
	fs.Var(&f.certNames, "cert-name", "name or IP the issued certificate covers (repeatable; default localhost, resolver.lab.test, 127.0.0.1, ::1)")
	fs.StringVar(&f.log, "log", "", "query log file (JSON lines, appended); - is stdout, empty is none")
	fs.StringVar(&f.forward, "forward", "", "upstream URL for names outside the zones (default: REFUSED)")
	fs.DurationVar(&f.poll, "poll", resolver.DefaultPollInterval, "how often key set directories are checked for rotation")
	fs.DurationVar(&f.idleTimeout, "idle-timeout", 0, "close a connection that sends no query for this long, on every listener\n"+
		"(0: each one's default: Do53 TCP and DoT 10s, DoH and DoH3 60s, DoQ 30s)")
	fs.DurationVar(&f.readTimeout, "read-timeout", 0, "cut off a started query (a DNS message after its first byte, a DoH\n"+
		"request's headers and then its body, a DoQ stream) that takes longer (0: 10s)")
	alias(fs, "ca-dir", "pki")
	alias(fs, "querylog", "log")
	return fs, f
}

func runResolver(args []string) error {
	fs, f := newResolverFlags()
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	cfg, notes, err := f.toConfig(fs)
	if err != nil {
		return err
	}
	if len(cfg.Zones) == 0 && cfg.Forward == "" {
		return usageError("resolver", "give at least one --zone FILE (or --forward URL)")
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	wait := stopSignals("resolver")
	r, err := resolver.Start(*cfg)
	if err != nil {
		return err
	}
	defer r.Close()
	for _, n := range notes {
		fmt.Fprintln(os.Stderr, "echlab resolver:", n)
	}
	for _, a := range r.Addrs() {
		fmt.Printf("%-8s %s\n", a.Transport, a.URL)
	}
	if r.CAFile != "" {
		fmt.Printf("%-8s %s\n", "ca", r.CAFile)
	}
	fmt.Fprintf(os.Stderr, "echlab resolver: serving %d zone file(s) on %d listener(s)\n", len(cfg.Zones), len(r.Addrs()))
	return wait()
}

// toConfig merges the config file and the flags. Without a config file the
// listener flags' defaults apply; the encrypted ones are turned off (with a
// note) when no certificate source is given and they were not asked for.
func (f *resolverFlags) toConfig(fs *flag.FlagSet) (*resolver.Config, []string, error) {
	cfg := &resolver.Config{}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	if f.config != "" {
		c, err := resolver.LoadConfig(f.config)
		if err != nil {
			return nil, nil, err
		}
		cfg = c
	}
	if err := f.addData(cfg); err != nil {
		return nil, nil, err
	}
	f.applySettings(cfg, set)
	return cfg, f.offWithoutCert(cfg, set), nil
}

// addData appends the zones, key sets and publish rules of the flags.
func (f *resolverFlags) addData(cfg *resolver.Config) error {
	for _, z := range f.zones {
		zf := resolver.ZoneFile{File: z}
		if origin, file, ok := strings.Cut(z, "="); ok {
			zf = resolver.ZoneFile{Origin: origin, File: file}
		}
		cfg.Zones = append(cfg.Zones, zf)
	}
	for _, ks := range f.keySets {
		name, dir, ok := strings.Cut(ks, "=")
		if !ok || name == "" || dir == "" {
			return fmt.Errorf("--keyset %q: want NAME=DIR", ks)
		}
		if cfg.KeySets == nil {
			cfg.KeySets = map[string]string{}
		}
		cfg.KeySets[name] = dir
	}
	for _, p := range f.publish {
		rule, err := parsePublish(p)
		if err != nil {
			return err
		}
		cfg.Publish = append(cfg.Publish, rule)
	}
	return f.addESNI(cfg)
}

// applySettings sets the listeners, TLS, query log, forwarder and poll
// interval: the flags given, and the listener and poll defaults when
// there is no config file.
func (f *resolverFlags) applySettings(cfg *resolver.Config, set map[string]bool) {
	use := func(name string) bool { return set[name] || f.config == "" }
	l := &cfg.Listen
	for name, pair := range map[string][2]*string{
		"udp": {&l.UDP, &f.udp}, "tcp": {&l.TCP, &f.tcp}, "dot": {&l.DoT, &f.dot}, "doh": {&l.DoH, &f.doh},
		"doh3": {&l.DoH3, &f.doh3}, "doq": {&l.DoQ, &f.doq}, "metrics": {&l.Metrics, &f.metrics},
	} {
		if use(name) {
			*pair[0] = *pair[1]
		}
	}
	if set["cert"] || set["key"] {
		cfg.TLS.CertFile, cfg.TLS.KeyFile = f.cert, f.key
	}
	if use("pki") {
		cfg.TLS.CADir = f.pki
	}
	if set["tls-ech"] {
		cfg.TLS.ECHKeySet = f.tlsECH
	}
	if len(f.certNames) > 0 {
		cfg.TLS.Names = f.certNames
	}
	if set["log"] {
		cfg.QueryLogFile = f.log
	}
	if set["forward"] {
		cfg.Forward = f.forward
	}
	if use("poll") {
		cfg.PollInterval = resolver.Duration(f.poll)
	}
	if set["idle-timeout"] {
		cfg.IdleTimeout = resolver.Duration(f.idleTimeout)
	}
	if set["read-timeout"] {
		cfg.ReadTimeout = resolver.Duration(f.readTimeout)
	}
}

// offWithoutCert turns off the encrypted listeners that only have their
// default address when there is neither a config file nor a certificate
// source, and says so in the returned notes.
func (f *resolverFlags) offWithoutCert(cfg *resolver.Config, set map[string]bool) []string {
	if cfg.TLS.CertFile != "" || cfg.TLS.CADir != "" || f.config != "" {
		return nil
	}
	l := &cfg.Listen
	var notes []string
	for _, ln := range []struct {
		name string
		addr *string
	}{{"dot", &l.DoT}, {"doh", &l.DoH}, {"doh3", &l.DoH3}, {"doq", &l.DoQ}} {
		if *ln.addr != "" && !set[ln.name] {
			*ln.addr = ""
			notes = append(notes, "--"+ln.name+" off: give --pki DIR or --cert/--key to serve it")
		}
	}
	return notes
}

// parsePublish reads NAME,keyset=K[,port=P][,target=T][,alpn=A]...[,ttl=S].
func parsePublish(s string) (resolver.PublishRule, error) {
	parts := strings.Split(s, ",")
	r := resolver.PublishRule{Name: parts[0]}
	for _, p := range parts[1:] {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			return r, fmt.Errorf("--publish %q: %q is not key=value", s, p)
		}
		switch k {
		case "keyset":
			r.KeySet = v
		case "target":
			r.Target = v
		case "alpn":
			r.ALPN = append(r.ALPN, v)
		case "port", "ttl":
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil || (k == "port" && n > 65535) {
				return r, fmt.Errorf("--publish %q: bad %s %q", s, k, v)
			}
			if k == "port" {
				r.Port = uint16(n)
			} else {
				r.TTL = uint32(n)
			}
		default:
			return r, fmt.Errorf("--publish %q: unknown key %q (keyset, port, target, alpn, ttl)", s, k)
		}
	}
	if r.Name == "" || r.KeySet == "" {
		return r, fmt.Errorf("--publish %q: want NAME,keyset=K", s)
	}
	return r, nil
}
