package server

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/internal/pki"
)

// SplitConfig configures StartSplit, the split-mode client-facing server.
// Routes is required; the rest has working zero values.
type SplitConfig struct {
	// Addr is the TCP address to listen on; "" means "127.0.0.1:0".
	Addr string
	// Keys are the ECH keys the relay opens ClientHelloOuters with. nil
	// means no ECH: every connection is passed through or sent to Public.
	Keys *ech.KeySet
	// TrialDecrypt also tries keys whose config id differs.
	TrialDecrypt bool
	// Routes maps inner SNI (or, without ECH, plain SNI) to backends.
	Routes Routes
	// Public serves the connections whose ECH the relay did not open: it
	// completes them with the ClientHelloOuter and sends retry configs.
	// nil starts one in process (the public name only, CA and Log) whose
	// crypto/tls holds Keys' configs with decoy private keys, so that it
	// can only reject ECH (with retry configs), never accept what the
	// relay refused. A server passed here must do the same.
	Public *Server
	// PublicName and CA configure the in-process public server.
	PublicName string
	CA         *pki.CA
	// Log receives one ConnRecord JSON line per relayed connection.
	Log io.Writer
	// ReadTimeout bounds reading a ClientHello (and a backend's
	// ServerHello); 0 means DefaultHelloTimeout (5 s).
	ReadTimeout time.Duration
	// MaxHello bounds the bytes of one ClientHello; 0 means
	// DefaultMaxHello.
	MaxHello int
	// MaxHelloRecords bounds the handshake records that carry one
	// ClientHello; 0 means DefaultMaxHelloRecords.
	MaxHelloRecords int
	// DialTimeout bounds dialing a backend; 0 means 5 s.
	DialTimeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// IdleTimeout closes both sides of a relayed connection when no byte
	// has gone either way for this long; 0 means DefaultIdleTimeout (60 s).
	IdleTimeout time.Duration
	// FrontSecret, shared with the backends (their Config.FrontSecret,
	// LoadFrontSecret), makes the relay start every connection it
	// forwards with a PROXY v2 header: the client's address and an HMAC'd
	// verdict (ECH status, outer SNI, config id, suite) bound to the
	// forwarded ClientHello's random. nil sends none: backends then log a
	// forwarded ClientHelloInner as ECHInnerInClear.
	FrontSecret []byte
}

func (c SplitConfig) populate() (SplitConfig, error) {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:0"
	}
	if len(c.Routes) == 0 {
		return c, fmt.Errorf("%w: split mode needs at least one route", ErrConfig)
	}
	if err := c.Routes.validate(); err != nil {
		return c, err
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = DefaultHelloTimeout
	}
	if c.MaxHello <= 0 {
		c.MaxHello = DefaultMaxHello
	}
	if c.MaxHelloRecords <= 0 {
		c.MaxHelloRecords = DefaultMaxHelloRecords
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = 5 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, nil
}

// DefaultHelloTimeout is SplitConfig.ReadTimeout's default.
const DefaultHelloTimeout = 5 * time.Second

// UsableKeys is a KeySource over a key set that gives crypto/tls only the
// keys it can use, leaving out those of KEMs it lacks (*ech.KeySet itself
// fails the handshake then). The split relay opens those with circl.
func UsableKeys(ks *ech.KeySet) KeySource { return supportedKeys{ks} }

type supportedKeys struct{ ks *ech.KeySet }

// TLSKeys returns the usable keys.
func (k supportedKeys) TLSKeys() ([]tls.EncryptedClientHelloKey, error) {
	keys, _ := k.ks.TLSKeysSupported()
	return keys, nil
}

// Split is a running split-mode relay.
type Split struct {
	cfg       SplitConfig
	ln        net.Listener
	public    *Server
	ownPublic bool
	log       *recordLog

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
	once   sync.Once
}

// StartSplit listens on cfg.Addr and relays until Close.
func StartSplit(cfg SplitConfig) (*Split, error) {
	c, err := cfg.populate()
	if err != nil {
		return nil, err
	}
	s := &Split{cfg: c, public: c.Public, log: &recordLog{w: c.Log}, conns: map[net.Conn]struct{}{}}
	if s.public == nil {
		pc := Config{PublicName: c.PublicName, Names: []string{}, CA: c.CA, Log: c.Log, Now: c.Now, Mode: "split-public",
			IdleTimeout: c.IdleTimeout}
		if c.Keys != nil {
			pc.Keys = newDecoyKeys(c.Keys)
		}
		if s.public, err = Start(pc); err != nil {
			return nil, err
		}
		s.ownPublic = true
	}
	if s.ln, err = net.Listen("tcp", c.Addr); err != nil {
		if s.ownPublic {
			s.public.Close()
		}
		return nil, err
	}
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

// Addr returns the address the relay listens on.
func (s *Split) Addr() string { return s.ln.Addr().String() }

// Public returns the server that answers the ClientHellos the relay cannot
// decrypt.
func (s *Split) Public() *Server { return s.public }

// Close stops the relay, closes its connections and, if it started it,
// the public server.
func (s *Split) Close() error {
	var err error
	s.once.Do(func() {
		err = s.ln.Close()
		s.mu.Lock()
		s.closed = true
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
		if s.ownPublic {
			s.public.Close()
		}
	})
	return err
}

func (s *Split) acceptLoop() {
	defer s.wg.Done()
	acceptEach(s.ln, func(c net.Conn) {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serve(c)
		}()
	})
}

// track registers a conn for Close; untrack forgets it.
func (s *Split) track(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.Close()
		return
	}
	s.conns[c] = struct{}{}
}

func (s *Split) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}
