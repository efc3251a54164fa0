package client

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/echlab/echlab/ech"
)

// Mode says whether and how the client offers ECH.
type Mode string

// Modes.
const (
	// ModeECH offers ECH with a config from DNS or Options.ConfigList.
	ModeECH Mode = "ech"
	// ModeBaseline never offers ECH: the true name goes in the clear SNI.
	ModeBaseline Mode = "baseline"
	// ModeGREASE sends a GREASE ECH extension. crypto/tls cannot (see
	// grease.go), so this mode writes a ClientHello built here over a raw TCP
	// socket and reads only the server's first flight.
	ModeGREASE Mode = "grease"
)

// Policy says what to do when ECH cannot be used.
type Policy string

// Policies.
const (
	// PolicyFailClosed (the default) fails the fetch when no ECH config is
	// found or the server rejects ECH without usable retry configs.
	PolicyFailClosed Policy = "fail-closed"
	// PolicyFallback connects again without ECH (the true name in the clear
	// SNI) and reports ECH "fallback" with the reason.
	PolicyFallback Policy = "fallback"
)

// Options configure a fetch. The zero value fetches with ECH, fail-closed,
// verifying against the system roots; but a resolver (or ConfigList plus
// ConnectTo) must be given, since the system resolver is never used.
type Options struct {
	Mode   Mode   // "" means ModeECH
	Policy Policy // "" means PolicyFailClosed

	// Resolver does every lookup (HTTPS, A, AAAA). DNSTransport and
	// DNSServer only label the result.
	Resolver     Exchanger
	DNSTransport string
	DNSServer    string

	// ConfigList, when set, is used instead of the HTTPS record's ech.
	ConfigList []byte
	// ConnectTo overrides where to connect: "IP" or "IP:port".
	ConnectTo string

	RootCAs            *x509.CertPool    // nil means the system roots
	Certificates       []tls.Certificate // client certificates (mTLS)
	ALPN               []string          // nil means h2,http/1.1 (TCP) or h3 (QUIC)
	Groups             []tls.CurveID     // key exchange groups; nil means Go's default
	ServerName         string            // the true (inner) SNI; "" means the URL host
	InsecureSkipVerify bool              // skip verifying the (inner) server certificate

	ConnectTimeout   time.Duration // per address; 0 means 5s
	HandshakeTimeout time.Duration // 0 means 5s
	Timeout          time.Duration // the whole fetch; 0 means 30s

	// KeyLog receives NSS key log lines (SSLKEYLOGFILE). crypto/tls writes
	// the traffic secrets (with the inner random when ECH was accepted);
	// the client adds ECH_CONFIG lines for TCP (see keylog.go).
	KeyLog io.Writer

	// OnClientHello, when set, is called with the 32-byte random of every
	// ClientHello the client puts on the wire, once each: every TCP
	// connection's (crypto/tls's and the GREASE one) and every QUIC
	// connection's (each address tried, the retry with retry configs, the
	// fallback; a ClientHello sent again after a QUIC Retry is the same
	// one). The random is read from what the client writes, the first TLS
	// record over TCP and the client's own first Initial packet over QUIC,
	// so an attempt that times out before crypto/tls writes a KeyLog line
	// is reported too. Under ECH it is the outer random (KeyLog carries
	// the inner one when ECH was accepted). It is called just before the
	// ClientHello is sent, on the sending goroutine (quic-go's for QUIC),
	// never after Fetch returns; it must not block, and may keep random.
	OnClientHello func(random []byte)

	HTTP3   bool  // fetch over QUIC with HTTP/3
	NoRetry bool  // do not retry with the server's retry configs
	MaxBody int64 // body bytes kept; 0 means 1 MiB
}

func (o Options) withDefaults() (Options, error) {
	if o.Mode == "" {
		o.Mode = ModeECH
	}
	if o.Policy == "" {
		o.Policy = PolicyFailClosed
	}
	switch o.Mode {
	case ModeECH, ModeBaseline, ModeGREASE:
	default:
		return o, fmt.Errorf("%w: mode %q", ErrUnsupported, o.Mode)
	}
	if o.Policy != PolicyFailClosed && o.Policy != PolicyFallback {
		return o, fmt.Errorf("%w: policy %q", ErrUnsupported, o.Policy)
	}
	if o.Mode == ModeGREASE && o.HTTP3 {
		return o, fmt.Errorf("%w: GREASE mode works over TCP only", ErrUnsupported)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.ConnectTimeout, 5*time.Second)
	def(&o.HandshakeTimeout, 5*time.Second)
	def(&o.Timeout, 30*time.Second)
	if o.MaxBody <= 0 {
		o.MaxBody = 1 << 20
	}
	if o.ALPN == nil {
		o.ALPN = []string{"h2", "http/1.1"}
		if o.HTTP3 {
			o.ALPN = []string{"h3"}
		}
	}
	return o, nil
}

var groupNames = map[string]tls.CurveID{
	"x25519": tls.X25519, "p256": tls.CurveP256, "p384": tls.CurveP384, "p521": tls.CurveP521,
	"x25519mlkem768": tls.X25519MLKEM768, "secp256r1mlkem768": tls.SecP256r1MLKEM768,
	"secp384r1mlkem1024": tls.SecP384r1MLKEM1024,
}

// ParseGroups turns a comma-separated list of group names (x25519, p256,
// p384, p521, x25519mlkem768, …) into CurveIDs, in order.
func ParseGroups(s string) ([]tls.CurveID, error) {
	var out []tls.CurveID
	for _, name := range strings.Split(s, ",") {
		name = strings.ToLower(strings.TrimSpace(name))
		if name == "" {
			continue
		}
		id, ok := groupNames[name]
		if !ok {
			return nil, fmt.Errorf("%w: key exchange group %q", ErrUnsupported, name)
		}
		out = append(out, id)
	}
	return out, nil
}

// LoadConfigList reads an ECHConfigList given as a file name or as text.
// A file may hold the raw list, base64, an ech= SvcParam or an ECH PEM
// file (RFC 9934); text may be any of those but raw.
func LoadConfigList(arg string) ([]byte, error) {
	text := arg
	if b, err := os.ReadFile(arg); err == nil {
		if l, _ := ech.ParseConfigListLenient(b); l != nil {
			return b, nil // a well-framed raw list; SelectConfig skips bad configs
		}
		text = string(b)
	}
	list, err := ech.DecodeConfigListText(text)
	if err != nil {
		return nil, fmt.Errorf("client: ECH config %q is not a readable file or a config list: %w", short(arg), err)
	}
	return list, nil
}

func short(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
