package lab

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/echlab/echlab/lab/capture"
	"github.com/echlab/echlab/resolver"
)

// zoneText is the lab.test zone: every lab name at 127.0.0.1. The HTTPS
// records are the resolver's publisher's, made from the key sets.
func zoneText() string {
	z := "$ORIGIN " + LabZone + "\n$TTL 60\n" +
		"@ IN SOA ns.lab.test. hostmaster.lab.test. 1 3600 600 86400 60\n" +
		"@ IN NS ns.lab.test.\n"
	names := []string{"ns", "resolver", "public", "secret", "backend"}
	for _, n := range SweepNames() {
		if short, ok := strings.CutSuffix(n, ".lab.test"); ok {
			names = append(names, short)
		}
	}
	for _, n := range names {
		z += n + " IN A 127.0.0.1\n"
	}
	return z
}

// publishRules says which key set each ECH service's HTTPS record
// carries: at _PORT._https.secret.lab.test, TargetName public.lab.test.
func (s *stack) publishRules() []resolver.PublishRule {
	var rules []resolver.PublishRule
	for _, name := range slices.Sorted(maps.Keys(s.services)) {
		sv := s.services[name]
		if sv.keySet == "" {
			continue
		}
		alpn := []string{"h2", "http/1.1"}
		if sv.udp != "" {
			alpn = []string{"h3", "h2", "http/1.1"}
		}
		rules = append(rules, resolver.PublishRule{Name: SecretName + ".", KeySet: sv.keySet,
			Port: port(sv.addr), Target: PublicName + ".", ALPN: alpn})
	}
	return rules
}

// startResolver writes the zone, starts the resolver with every
// transport, and fronts each listener with a relay in synth mode.
func (s *stack) startResolver(outDir, pkiDir string, queryLog io.Writer) error {
	zoneFile := filepath.Join(outDir, "lab.test.zone")
	if err := os.WriteFile(zoneFile, []byte(zoneText()), 0o644); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	keySets := map[string]string{}
	for dir := range s.keySets {
		keySets[dir] = filepath.Join(s.keysDir, dir)
	}
	esniDirs, esniRules := s.esniPublish()
	lo := "127.0.0.1:0"
	var r *resolver.Running
	var err error
	for range 5 {
		// Do53 UDP and TCP share a port, so that udp:// falls back to
		// TCP on truncation (an X-Wing config does not fit in 1232 bytes).
		do53, perr := freePair()
		if perr != nil {
			return perr
		}
		r, err = resolver.Start(resolver.Config{
			Zones:   []resolver.ZoneFile{{File: zoneFile, Origin: LabZone}},
			KeySets: keySets, Publish: s.publishRules(),
			ESNIKeySets: esniDirs, PublishESNI: esniRules,
			Listen:   resolver.Listen{UDP: do53, TCP: do53, DoT: lo, DoH: lo, DoH3: lo, DoQ: lo},
			TLS:      resolver.TLSFiles{CADir: pkiDir},
			QueryLog: queryLog,
		})
		if err == nil || !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
	}
	if err != nil {
		return err
	}
	s.closers = append(s.closers, r)
	s.resolver = r
	return s.resolverURLs()
}

// resolverURLs fills dnsURLs: the resolver's URLs, rewritten to the
// relays' addresses in synth mode.
func (s *stack) resolverURLs() error {
	byT := map[string]resolver.ListenerAddr{}
	for _, a := range s.resolver.Addrs() {
		byT[a.Transport] = a
	}
	s.dnsURLs = map[string]string{}
	routes := []struct{ lab, tcp, udp, scheme, path string }{
		{DNSDo53, "tcp", "udp", "udp", ""},
		{DNSDoT, "dot", "", "tls", ""},
		{DNSDoH, "doh", "", "https", resolver.DoHPath},
		{DNSDoH3, "", "doh3", "h3", resolver.DoHPath},
		{DNSDoQ, "", "doq", "quic", ""},
	}
	for _, rt := range routes {
		tcp, udp := addrOf(byT, rt.tcp), addrOf(byT, rt.udp)
		role := capture.Role("dns/" + rt.lab) // the DNS… constants are the role's transport names
		var addr string
		var err error
		switch {
		case s.observer == nil && udp != "":
			addr = udp
		case s.observer == nil:
			addr = tcp
		case s.observer != nil && tcp != "" && udp != "":
			addr, err = s.observer.RelayPair(role, tcp, udp)
		case s.observer != nil && tcp != "":
			addr, err = s.observer.RelayTCP(role, tcp)
		case s.observer != nil && udp != "":
			addr, err = s.observer.RelayUDP(role, udp)
		}
		if err != nil {
			return err
		}
		if addr != "" {
			s.dnsURLs[rt.lab] = rt.scheme + "://" + addr + rt.path
		}
	}
	return nil
}

func addrOf(m map[string]resolver.ListenerAddr, transport string) string {
	if a, ok := m[transport]; ok && a.Addr != nil {
		return a.Addr.String()
	}
	return ""
}
