package lab

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/internal/pki"
	"github.com/echlab/echlab/lab/capture"
	"github.com/echlab/echlab/resolver"
	"github.com/echlab/echlab/server"
)

// Lab names. Every name resolves to 127.0.0.1 in the lab zone.
const (
	LabZone    = "lab.test."
	PublicName = "public.lab.test" // the ECHConfig public_name of every ECH server
	SecretName = "secret.lab.test" // the name ECH hides
)

// Key set directory names under the keys folder.
const (
	keysShared      = "shared"
	keysSplit       = "split"
	keysHRR         = "hrr"
	keysPQ          = "pq"
	keysStaleDNS    = "stale-dns"    // published in DNS, unknown to the server
	keysStaleServer = "stale-server" // held by the stale-retry server
)

// service is one started server as the client reaches it.
type service struct {
	name   string // "shared", "baseline", …
	addr   string // what DNS and URLs point at: the relay in synth mode
	real   string // the server's own address
	udp    string // HTTP/3 address ("" without)
	keySet string // key set published for it in DNS ("" for none)
}

// stack is every component of the lab, started in one process on loopback.
type stack struct {
	cfg       RunConfig
	ca        *pki.CA
	keySets   map[string]*ech.KeySet // by directory name
	esni      *ech.ESNIKeySet        // legacy ESNI keys (scenario_esni.go)
	keysDir   string
	services  map[string]*service
	resolver  *resolver.Running
	dnsURLs   map[string]string // DNS transport → URL the client uses
	observer  *capture.Observer // nil with a live capture
	serverLog io.Writer
	keylog    io.Writer
	closers   []io.Closer
	skipped   map[string]string // service → why it cannot start
}

// lockedWriter serialises writes from several components into one file.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// keySetSource adapts an ech.KeySet to server.KeySource, leaving out keys
// crypto/tls cannot use.
type keySetSource struct{ ks *ech.KeySet }

func (k keySetSource) TLSKeys() ([]tls.EncryptedClientHelloKey, error) {
	keys, _ := k.ks.TLSKeysSupported()
	return keys, nil
}

// loadKeys loads or generates every key set the scenarios use.
func (s *stack) loadKeys() error {
	specs := []struct {
		dir string
		o   ech.KeyOptions
	}{
		{keysShared, ech.KeyOptions{ConfigID: 1, MaximumNameLength: 64}}, // padding-sweep names reach 60
		{keysSplit, ech.KeyOptions{ConfigID: 2}},
		{keysHRR, ech.KeyOptions{ConfigID: 3}},
		{keysPQ, ech.KeyOptions{ConfigID: 4, KEM: ech.KEMXWing}},
		{keysStaleDNS, ech.KeyOptions{ConfigID: 5}},
		{keysStaleServer, ech.KeyOptions{ConfigID: 6}},
	}
	s.keySets = map[string]*ech.KeySet{}
	for _, sp := range specs {
		sp.o.PublicName = PublicName
		ks, err := loadOrMakeKeySet(filepath.Join(s.keysDir, sp.dir), sp.o)
		if err != nil {
			return err
		}
		s.keySets[sp.dir] = ks
	}
	return s.loadESNIKeys()
}

// loadOrMakeKeySet loads the key set in dir, or generates a one-key set
// there.
func loadOrMakeKeySet(dir string, o ech.KeyOptions) (*ech.KeySet, error) {
	if _, err := os.Stat(filepath.Join(dir, resolver.KeySetFile)); err == nil {
		ks, err := ech.LoadKeySet(dir)
		if err != nil {
			return nil, fmt.Errorf("lab: key set %s: %w", dir, err)
		}
		return ks, nil
	}
	k, err := ech.GenerateKey(o)
	if err != nil {
		return nil, fmt.Errorf("lab: generating key set %s: %w", dir, err)
	}
	ks := &ech.KeySet{}
	ks.Add(k, true)
	if err := ech.SaveKeySet(dir, ks); err != nil {
		return nil, fmt.Errorf("lab: saving key set %s: %w", dir, err)
	}
	return ks, nil
}

// allKeys is every key of every key set: what Compare opens ECH with.
func (s *stack) allKeys() ech.KeyList {
	var l ech.KeyList
	for _, ks := range s.keySets {
		l = append(l, ks.All()...)
	}
	return l
}

// front puts the observer's relay in front of a service's listeners (in
// synth mode), with the role "https/<name>", and returns the address
// clients should use.
func (s *stack) front(name, tcp, udp string) (string, error) {
	if s.observer == nil {
		return tcp, nil
	}
	role := capture.Role("https/" + name)
	if udp != "" {
		return s.observer.RelayPair(role, tcp, udp)
	}
	return s.observer.RelayTCP(role, tcp)
}

// port returns the port number of a host:port address.
func port(addr string) uint16 {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return uint16(n)
}

// close stops every component, newest first.
func (s *stack) close() error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		if err := s.closers[i].Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	s.closers = nil
	return errors.Join(errs...)
}

// startServers starts the HTTPS servers of the scenarios (the Service*
// names), each behind its relay in synth mode. A server that cannot start
// marks its scenarios skipped with the reason instead of failing the run.
func (s *stack) startServers() error {
	s.services = map[string]*service{}
	names := append([]string{SecretName}, SweepNames()...)
	specs := []struct {
		name, keys string
		cfg        server.Config
	}{
		{ServiceBaseline, "", server.Config{}},
		{ServiceShared, keysShared, server.Config{Names: names, HTTP3: true}},
		{ServiceHRR, keysHRR, server.Config{ForceHRR: true, Mode: "shared-hrr"}},
		{ServicePQ, keysPQ, server.Config{Mode: "shared-pq"}},
		{ServiceStale, keysStaleServer, server.Config{Mode: "shared-stale"}},
	}
	for _, sp := range specs {
		cfg := sp.cfg
		cfg.CA, cfg.Log, cfg.PublicName = s.ca, s.serverLog, PublicName
		published := sp.keys
		if sp.keys != "" {
			ks := s.keySets[sp.keys]
			if keys, skipped := ks.TLSKeysSupported(); len(keys) == 0 {
				s.skip(sp.name, fmt.Sprintf("crypto/tls cannot use the %s key set's KEM (%d keys skipped)", sp.keys, len(skipped)))
				continue
			}
			cfg.Keys = keySetSource{ks}
			if sp.name == ServiceStale {
				published = keysStaleDNS
			}
		}
		if err := s.startServer(sp.name, published, cfg); err != nil {
			s.skip(sp.name, err.Error())
		}
	}
	return s.startSplit()
}

// skip marks a service as unable to run, keeping the first reason: the
// scenarios that need it are skipped with it.
func (s *stack) skip(service, why string) {
	if _, ok := s.skipped[service]; !ok {
		s.skipped[service] = why
	}
}

func (s *stack) startServer(name, keySet string, cfg server.Config) error {
	start := server.Start
	if name == ServiceBaseline {
		start = server.StartBaseline
	}
	srv, err := start(cfg)
	if err != nil {
		return err
	}
	s.closers = append(s.closers, srv)
	addr, err := s.front(name, srv.Addr(), srv.UDPAddr())
	if err != nil {
		return err
	}
	s.services[name] = &service{name: name, addr: addr, real: srv.Addr(), udp: srv.UDPAddr(), keySet: keySet}
	return nil
}

// startSplit starts split mode: a backend for secret.lab.test (crypto/tls
// without ECH keys: it answers the ClientHelloInner the relay forwards)
// and the client-facing relay holding the split key set. The two share a
// front secret made for this run, so the backend logs ECH the relay
// opened as accepted (and a ClientHelloInner sent in the clear as not).
func (s *stack) startSplit() error {
	secret, err := server.NewFrontSecret()
	if err != nil {
		return err
	}
	backend, err := server.Start(server.Config{Names: []string{SecretName}, PublicName: PublicName,
		CA: s.ca, Log: s.serverLog, Mode: "split-backend", FrontSecret: secret})
	if err != nil {
		s.skip(ServiceSplit, err.Error())
		return nil
	}
	s.closers = append(s.closers, backend)
	split, err := server.StartSplit(server.SplitConfig{Keys: s.keySets[keysSplit],
		Routes: server.Routes{SecretName: backend.Addr()}, PublicName: PublicName, CA: s.ca, Log: s.serverLog,
		FrontSecret: secret})
	if err != nil {
		s.skip(ServiceSplit, err.Error())
		return nil
	}
	s.closers = append(s.closers, split)
	addr, err := s.front(ServiceSplit, split.Addr(), "")
	if err != nil {
		return err
	}
	s.services[ServiceSplit] = &service{name: ServiceSplit, addr: addr, real: split.Addr(), keySet: keysSplit}
	return nil
}

// servicePorts are the ports clients reach the HTTPS servers on (relay
// ports in synth mode): flows to them are the scenario's TLS connection,
// the rest is DNS.
func (s *stack) servicePorts() map[uint16]bool {
	ports := map[uint16]bool{}
	for _, sv := range s.services {
		ports[port(sv.addr)] = true
	}
	return ports
}

// freePair returns a loopback address whose port is free for both TCP and
// UDP right now.
func freePair() (string, error) {
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", fmt.Errorf("lab: %w", err)
		}
		addr := ln.Addr().String()
		pc, err := net.ListenPacket("udp", addr)
		ln.Close()
		if err == nil {
			pc.Close()
			return addr, nil
		}
	}
	return "", errors.New("lab: no loopback port free for both TCP and UDP")
}
