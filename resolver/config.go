package resolver

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"time"
)

// ErrConfig is wrapped by every configuration error found by Validate.
var ErrConfig = errors.New("resolver: bad configuration")

// Config says what a resolver serves and where. The zero value is valid and
// starts nothing; every listener whose address is empty is off.
type Config struct {
	Zones   []ZoneFile        `json:"zones"`
	KeySets map[string]string `json:"keysets,omitempty"` // key set name → directory
	Publish []PublishRule     `json:"publish,omitempty"`
	Listen  Listen            `json:"listen"`
	TLS     TLSFiles          `json:"tls"`
	// Forward is the upstream URL (udp://, tcp://, tls://, https://, …)
	// for names outside the zones. Empty (the default) refuses them.
	Forward string `json:"forward,omitempty"`
	// PollInterval is how often key set directories are checked for a
	// rotation; 0 means DefaultPollInterval.
	PollInterval Duration `json:"poll_interval,omitempty"`
	// UDPSize is the EDNS(0) payload size advertised; 0 means 1232.
	UDPSize uint16 `json:"udp_size,omitempty"`
	// QueryLogFile is where JSON lines go ("-" is stdout); empty is none.
	QueryLogFile string `json:"query_log,omitempty"`
	// ESNIKeySets maps an ESNI key set name to its directory
	// (ech.SaveESNIKeys); PublishESNI publishes them as _esni TXT records.
	ESNIKeySets map[string]string `json:"esni_keysets,omitempty"`
	PublishESNI []ESNIPublishRule `json:"publish_esni,omitempty"`
	// IdleTimeout closes a connection that sends no query for this long,
	// on every stream and QUIC listener; 0 means each listener's default
	// (Do53 TCP and DoT 10 s, DoH and DoH3 60 s, DoQ 30 s; see Timeouts).
	IdleTimeout Duration `json:"idle_timeout,omitempty"`
	// ReadTimeout bounds a started query on every listener (a DNS message
	// once its first byte came, a DoH request's headers and body, a DoQ
	// stream); 0 means 10 s.
	ReadTimeout Duration `json:"read_timeout,omitempty"`

	// QueryLog, when set, receives the query log instead of QueryLogFile.
	QueryLog io.Writer `json:"-"`
	// Logger receives events (rotations, failures); nil discards them.
	Logger *slog.Logger `json:"-"`
	// LoadKeySet reads a key set directory; nil means the ech package's
	// key set loader.
	LoadKeySet LoadFunc `json:"-"`
}

// ZoneFile is one zone to load; Origin may be empty when the file says it.
type ZoneFile struct {
	File   string `json:"file"`
	Origin string `json:"origin,omitempty"`
}

// Listen holds the listener addresses (host:port). Empty means off; port 0
// picks a free port.
type Listen struct {
	UDP     string `json:"udp,omitempty"`
	TCP     string `json:"tcp,omitempty"`
	DoT     string `json:"dot,omitempty"`
	DoH     string `json:"doh,omitempty"`  // TCP, HTTP/1.1 and HTTP/2
	DoH3    string `json:"doh3,omitempty"` // UDP, HTTP/3
	DoQ     string `json:"doq,omitempty"`  // UDP
	Metrics string `json:"metrics,omitempty"`
}

// TLSFiles says where the encrypted listeners get their certificate:
// CertFile and KeyFile, or else a lab CA in CADir (created if missing)
// that issues one for Names. ECHKeySet, when set, names a key set of
// Config.KeySets whose private keys the encrypted listeners themselves use
// to accept Encrypted Client Hello (following its rotations); its KEMs
// must be ones crypto/tls implements.
type TLSFiles struct {
	CertFile  string   `json:"cert,omitempty"`
	KeyFile   string   `json:"key,omitempty"`
	CADir     string   `json:"ca_dir,omitempty"`
	Names     []string `json:"names,omitempty"` // nil means localhost, resolver.lab.test, 127.0.0.1, ::1
	ECHKeySet string   `json:"ech_keyset,omitempty"`
}

// defaultCertNames are the names a CA-issued listener certificate covers.
var defaultCertNames = []string{"localhost", "resolver.lab.test", "127.0.0.1", "::1"}

// Duration is a time.Duration that reads from JSON as "500ms" or as
// nanoseconds.
type Duration time.Duration

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n int64
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("%w: duration %s", ErrConfig, b)
		}
		*d = Duration(n)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%w: duration: %w", ErrConfig, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// LoadConfig reads a JSON configuration file.
func LoadConfig(file string) (*Config, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrConfig, file, err)
	}
	return &c, nil
}

// Validate checks the configuration without touching files or sockets.
func (c *Config) Validate() error {
	for _, z := range c.Zones {
		if z.File == "" {
			return fmt.Errorf("%w: a zone has no file", ErrConfig)
		}
	}
	for _, r := range c.Publish {
		if _, ok := c.KeySets[r.KeySet]; !ok {
			return fmt.Errorf("%w: publish rule for %s names unknown key set %q", ErrConfig, r.Name, r.KeySet)
		}
	}
	if k := c.TLS.ECHKeySet; k != "" {
		if _, ok := c.KeySets[k]; !ok {
			return fmt.Errorf("%w: tls ech_keyset names unknown key set %q", ErrConfig, k)
		}
	}
	if err := c.validateESNI(); err != nil {
		return err
	}
	l := c.Listen
	for name, addr := range map[string]string{"udp": l.UDP, "tcp": l.TCP, "dot": l.DoT, "doh": l.DoH, "doh3": l.DoH3, "doq": l.DoQ, "metrics": l.Metrics} {
		if addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return fmt.Errorf("%w: listen %s address %q: %w", ErrConfig, name, addr, err)
		}
	}
	if c.needsTLS() && c.TLS.CADir == "" && (c.TLS.CertFile == "" || c.TLS.KeyFile == "") {
		return fmt.Errorf("%w: dot/doh/doh3/doq listeners need tls cert and key files or a ca_dir", ErrConfig)
	}
	if c.Forward != "" {
		if u, err := url.Parse(c.Forward); err != nil || u.Scheme == "" || u.Host == "" {
			return fmt.Errorf("%w: forward %q is not an upstream URL like udp://127.0.0.1:53", ErrConfig, c.Forward)
		}
	}
	if c.PollInterval < 0 {
		return fmt.Errorf("%w: negative poll_interval", ErrConfig)
	}
	if c.IdleTimeout < 0 || c.ReadTimeout < 0 {
		return fmt.Errorf("%w: negative idle_timeout or read_timeout", ErrConfig)
	}
	return nil
}

// timeouts are the listeners' Timeouts; zero fields mean their defaults.
func (c *Config) timeouts() Timeouts {
	return Timeouts{Idle: time.Duration(c.IdleTimeout), Read: time.Duration(c.ReadTimeout)}
}

func (c *Config) needsTLS() bool {
	return c.Listen.DoT != "" || c.Listen.DoH != "" || c.Listen.DoH3 != "" || c.Listen.DoQ != ""
}
