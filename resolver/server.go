package resolver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/echlab/echlab/internal/pki"
	"github.com/miekg/dns"
)

// Running is a started resolver: its zones, publisher and listeners.
type Running struct {
	Authority *Authority
	Publisher *Publisher
	Metrics   *Metrics // nil without a metrics listener
	Handler   Handler  // what every transport calls: authority, metrics, query log
	// CAFile is the lab CA certificate clients should trust, when the
	// listener certificate came from TLS.CADir.
	CAFile string

	addrs   []ListenerAddr
	closers []io.Closer
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// ListenerAddr is one listening socket.
type ListenerAddr struct {
	Transport string // udp, tcp, dot, doh, doh3, doq, metrics
	Addr      net.Addr
	URL       string // how to reach it, e.g. tls://127.0.0.1:8853
}

// Addrs lists the listeners, in start order.
func (r *Running) Addrs() []ListenerAddr { return append([]ListenerAddr(nil), r.addrs...) }

// Addr returns the address of a transport's listener, or nil.
func (r *Running) Addr(transport string) net.Addr {
	for _, a := range r.addrs {
		if a.Transport == transport {
			return a.Addr
		}
	}
	return nil
}

// Close stops every listener and watcher.
func (r *Running) Close() error {
	if r.cancel != nil {
		r.cancel()
	}
	var errs []error
	for i := len(r.closers) - 1; i >= 0; i-- {
		if err := r.closers[i].Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	r.wg.Wait()
	return errors.Join(errs...)
}

// Start validates cfg, loads the zones and key sets, publishes the ECH
// configs, and starts every configured listener and key set watcher. Any
// failure (a bad zone file, key set, publish rule or certificate, a busy
// port) stops what was started and is returned.
func Start(cfg Config) (*Running, error) {
	r := &Running{}
	if err := r.start(&cfg); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

func (r *Running) start(cfg *Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	zones, err := loadZones(cfg.Zones)
	if err != nil {
		return err
	}
	load := cfg.LoadKeySet
	if load == nil {
		load = loadKeySetConfigList
	}
	lists := map[string][]byte{}
	for name, dir := range cfg.KeySets {
		if lists[name], err = load(dir); err != nil {
			return fmt.Errorf("%w: key set %q in %s: %w", ErrPublish, name, dir, err)
		}
	}
	r.Authority = &Authority{UDPSize: cfg.UDPSize}
	if r.Publisher, err = newPublisher(r.Authority, zones, cfg.Publish, lists, cfg.Logger); err != nil {
		return err
	}
	if err := r.setForward(cfg.Forward); err != nil {
		return err
	}
	if err := r.buildHandler(cfg); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	for name, dir := range cfg.KeySets {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.Publisher.Watch(ctx, name, dir, load, time.Duration(cfg.PollInterval))
		}()
	}
	if err := r.startESNI(ctx, cfg); err != nil {
		return err
	}
	return r.listen(cfg)
}

func loadZones(files []ZoneFile) ([]*Zone, error) {
	var zones []*Zone
	for _, zf := range files {
		z, err := LoadZoneFile(zf.File, zf.Origin)
		if err != nil {
			return nil, err
		}
		zones = append(zones, z)
	}
	return zones, nil
}

func (r *Running) setForward(upstream string) error {
	if upstream == "" {
		return nil
	}
	c, err := NewClient(upstream, ClientOptions{})
	if err != nil {
		return fmt.Errorf("%w: forward: %w", ErrConfig, err)
	}
	r.closers = append(r.closers, c)
	r.Authority.Forward = c
	return nil
}

// buildHandler wraps the authority in the metrics and query log
// middlewares.
func (r *Running) buildHandler(cfg *Config) error {
	h := Handler(r.Authority)
	if cfg.Listen.Metrics != "" {
		r.Metrics = newMetrics()
		h = r.Metrics.Wrap(h)
	}
	w := cfg.QueryLog
	switch {
	case w != nil:
	case cfg.QueryLogFile == "-":
		w = os.Stdout
	case cfg.QueryLogFile != "":
		f, err := os.OpenFile(cfg.QueryLogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("%w: query log: %w", ErrConfig, err)
		}
		r.closers = append(r.closers, f)
		w = f
	}
	if w != nil {
		h = withQueryLog(h, w, nil)
	}
	r.Handler = h
	return nil
}

// tlsOptions gives the listeners a certificate from files or from the lab
// CA; an issued one also covers extra (the public names of the listeners'
// own ECH keys, needed when ECH is rejected and the client retries).
func (r *Running) tlsOptions(t TLSFiles, extra []string) (TLSListenerOptions, error) {
	if t.CertFile != "" {
		o := TLSListenerOptions{CertFile: t.CertFile, KeyFile: t.KeyFile}
		if _, err := o.ServerConfig(); err != nil {
			return o, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		return o, nil
	}
	ca, err := pki.LoadOrCreate(t.CADir)
	if err != nil {
		return TLSListenerOptions{}, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	names := t.Names
	if len(names) == 0 {
		names = defaultCertNames
	}
	for _, n := range extra {
		if !slices.Contains(names, n) {
			names = append(slices.Clip(names), n)
		}
	}
	cert, err := ca.Issue(names[0], names, false)
	if err != nil {
		return TLSListenerOptions{}, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	r.CAFile = filepath.Join(t.CADir, pki.CACertFile)
	return TLSListenerOptions{Certificates: []tls.Certificate{cert}}, nil
}

func (r *Running) add(transport, scheme string, c interface {
	Addr() net.Addr
	Close() error
}) {
	r.closers = append(r.closers, c)
	u := scheme + "://" + c.Addr().String()
	if transport == TransportDoH || transport == TransportDoH3 {
		u += DoHPath
	}
	if transport == "metrics" {
		u += "/metrics"
	}
	r.addrs = append(r.addrs, ListenerAddr{Transport: transport, Addr: c.Addr(), URL: u})
}

// udpMaxSize is the largest UDP response of an Authority.
func udpMaxSize(a *Authority) int {
	if a.UDPSize == 0 {
		return defaultUDPSize
	}
	return max(int(a.UDPSize), dns.MinMsgSize)
}

// listen starts the configured listeners.
func (r *Running) listen(cfg *Config) error {
	l, h := cfg.Listen, r.Handler
	if l.UDP != "" {
		s, err := StartUDP(h, l.UDP, udpMaxSize(r.Authority))
		if err != nil {
			return err
		}
		r.add(TransportUDP, "udp", s)
	}
	if l.TCP != "" {
		s, err := startTCPTimeouts(h, l.TCP, cfg.timeouts())
		if err != nil {
			return err
		}
		r.add(TransportTCP, "tcp", s)
	}
	if cfg.needsTLS() {
		lech, err := startListenerECH(cfg)
		if err != nil {
			return err
		}
		o, err := r.tlsOptions(cfg.TLS, lech.publicNames())
		if err != nil {
			return err
		}
		if lech != nil {
			o.GetECHKeys = lech.get
		}
		if err := r.listenTLS(l, o, cfg.timeouts()); err != nil {
			return err
		}
	}
	if l.Metrics != "" {
		s, err := startMetrics(r.Metrics, l.Metrics)
		if err != nil {
			return err
		}
		r.add("metrics", "http", s)
	}
	return nil
}

// listenTLS starts DoT, DoH (with HTTP/3 on the same port when DoH3 has
// the same address), DoH3 and DoQ.
func (r *Running) listenTLS(l Listen, o TLSListenerOptions, t Timeouts) error {
	h := r.Handler
	if l.DoT != "" {
		o.Addr = l.DoT
		s, err := startDoTTimeouts(h, o, t)
		if err != nil {
			return err
		}
		r.add(TransportDoT, "tls", s)
	}
	if l.DoH != "" && l.DoH == l.DoH3 {
		s, s3, err := startDoHWithH3(h, DoHOptions{TLSListenerOptions: withAddr(o, l.DoH), Timeouts: t})
		if err != nil {
			return err
		}
		r.add(TransportDoH, "https", s)
		r.add(TransportDoH3, "h3", s3)
		l.DoH, l.DoH3 = "", ""
	}
	if l.DoH != "" {
		s, err := StartDoH(h, DoHOptions{TLSListenerOptions: withAddr(o, l.DoH), Timeouts: t})
		if err != nil {
			return err
		}
		r.add(TransportDoH, "https", s)
	}
	if l.DoH3 != "" {
		s, err := StartDoH3(h, DoHOptions{TLSListenerOptions: withAddr(o, l.DoH3), Timeouts: t})
		if err != nil {
			return err
		}
		r.add(TransportDoH3, "h3", s)
	}
	if l.DoQ != "" {
		s, err := StartDoQ(h, DoQOptions{TLSListenerOptions: withAddr(o, l.DoQ), IdleTimeout: t.Idle, StreamTimeout: t.Read})
		if err != nil {
			return err
		}
		r.add(TransportDoQ, "quic", s)
	}
	return nil
}

func withAddr(o TLSListenerOptions, addr string) TLSListenerOptions {
	o.Addr = addr
	return o
}
