package client

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// ECHStatus says what became of ECH on a connection.
type ECHStatus string

// ECH statuses.
const (
	// ECHAccepted: ECH was offered and the server accepted it.
	ECHAccepted ECHStatus = "accepted"
	// ECHRejected: ECH was offered and the server rejected it (the fetch
	// failed, or retried: see Result.Retried).
	ECHRejected ECHStatus = "rejected"
	// ECHGrease: a GREASE ECH extension was sent (Mode GREASE).
	ECHGrease ECHStatus = "grease"
	// ECHNone: ECH was not offered (Mode Baseline).
	ECHNone ECHStatus = "none"
	// ECHFallback: ECH was wanted but the fetch went ahead without it under
	// PolicyFallback; Result.FallbackReason says why.
	ECHFallback ECHStatus = "fallback"
)

// Config sources for Result.ConfigSource.
const (
	SourceDNS    = "dns"    // the ech SvcParam of the HTTPS record
	SourceOption = "option" // Options.ConfigList (a flag or a file)
	SourceNone   = "none"   // no config was used
)

// Result is the record of one fetch. The lab writes it as JSONL and the
// notebooks read it, so the JSON names are part of the interface. Durations
// are in nanoseconds.
type Result struct {
	URL       string `json:"url"`
	Mode      Mode   `json:"mode"`
	Policy    Policy `json:"policy"`
	Transport string `json:"transport"` // "tcp" or "quic"

	DNSTransport string        `json:"dns_transport,omitempty"` // resolver URL scheme, e.g. "udp", "https"
	DNSServer    string        `json:"dns_server,omitempty"`
	DNSTime      time.Duration `json:"dns_ns"`
	Discovery    *Discovery    `json:"discovery,omitempty"`

	ConfigSource string `json:"config_source"`
	ConfigID     *uint8 `json:"config_id"` // id of the ECHConfig offered first
	PublicName   string `json:"public_name,omitempty"`

	RemoteAddr    string        `json:"remote_addr,omitempty"`
	ConnectTime   time.Duration `json:"connect_ns"`   // TCP connect, or QUIC socket set-up
	HandshakeTime time.Duration `json:"handshake_ns"` // TLS handshake, or the whole QUIC handshake
	TTFB          time.Duration `json:"ttfb_ns"`      // request sent to first response byte
	Total         time.Duration `json:"total_ns"`     // the whole fetch, DNS included

	// ECH is empty when the fetch failed before ECH's outcome was known.
	ECH               ECHStatus `json:"ech"`
	OuterSNI          string    `json:"outer_sni,omitempty"`
	InnerSNI          string    `json:"inner_sni,omitempty"`
	Retried           bool      `json:"retried"`
	RetryConfigID     *uint8    `json:"retry_config_id,omitempty"`
	Fallback          bool      `json:"fallback"`
	FallbackReason    string    `json:"fallback_reason,omitempty"`
	HandshakeComplete bool      `json:"handshake_complete"`
	Note              string    `json:"note,omitempty"`

	ClientCertRequested bool `json:"client_cert_requested,omitempty"`
	ClientCertSent      bool `json:"client_cert_sent,omitempty"`

	Version   string `json:"tls_version,omitempty"`
	Cipher    string `json:"cipher,omitempty"`
	Group     string `json:"group,omitempty"`
	ALPN      string `json:"alpn,omitempty"`
	HTTPProto string `json:"http_proto,omitempty"`
	Status    int    `json:"status,omitempty"`
	Bytes     int64  `json:"bytes"`
	Truncated bool   `json:"truncated,omitempty"`

	// ClientRandom is the hex random of the ClientHello a GREASE fetch
	// sent. Only GREASE sets it: its handshake stops at the ServerHello, so
	// no key log line names the connection (the other modes' randoms are
	// in the key log).
	ClientRandom string `json:"client_random,omitempty"`

	// ServerSaw is what the server said it saw, parsed from a JSON object
	// body (echlab's /api/conn) or key=value lines (/cdn-cgi/trace).
	ServerSaw map[string]any `json:"server_saw,omitempty"`
	// Body is the body read (up to Options.MaxBody); not in the JSON.
	Body []byte `json:"-"`

	ErrorClass Class  `json:"error_class,omitempty"`
	Error      string `json:"error,omitempty"`
}

// WriteJSON writes the result as one line of JSON.
func (r *Result) WriteJSON(w io.Writer) error {
	return json.NewEncoder(w).Encode(r)
}

// WriteTable writes the result as an aligned two-column table, leaving out
// empty fields.
func (r *Result) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, row := range r.rows() {
		if row[1] != "" {
			fmt.Fprintf(tw, "%s\t%s\n", row[0], row[1])
		}
	}
	for _, k := range sortedKeys(r.ServerSaw) {
		fmt.Fprintf(tw, "server saw %s\t%v\n", k, r.ServerSaw[k])
	}
	return tw.Flush()
}

func (r *Result) rows() [][2]string {
	ms := func(d time.Duration) string {
		if d == 0 {
			return ""
		}
		return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond))
	}
	id := func(p *uint8) string {
		if p == nil {
			return ""
		}
		return fmt.Sprint(*p)
	}
	status := ""
	if r.Status != 0 {
		status = fmt.Sprint(r.Status)
	}
	return [][2]string{
		{"url", r.URL}, {"mode", string(r.Mode)}, {"policy", string(r.Policy)}, {"transport", r.Transport},
		{"dns transport", r.DNSTransport}, {"dns server", r.DNSServer}, {"dns time", ms(r.DNSTime)},
		{"config source", r.ConfigSource}, {"config id", id(r.ConfigID)}, {"public name", r.PublicName},
		{"remote addr", r.RemoteAddr}, {"connect time", ms(r.ConnectTime)}, {"handshake time", ms(r.HandshakeTime)},
		{"ttfb", ms(r.TTFB)}, {"total", ms(r.Total)},
		{"ech", string(r.ECH)}, {"outer sni", r.OuterSNI}, {"inner sni", r.InnerSNI},
		{"retried", fmt.Sprint(r.Retried)}, {"retry config id", id(r.RetryConfigID)},
		{"fallback", fmt.Sprint(r.Fallback)}, {"fallback reason", r.FallbackReason},
		{"handshake complete", fmt.Sprint(r.HandshakeComplete)}, {"note", r.Note},
		{"client cert requested", yes(r.ClientCertRequested)}, {"client cert sent", yes(r.ClientCertSent)},
		{"tls version", r.Version}, {"cipher", r.Cipher}, {"group", r.Group}, {"alpn", r.ALPN},
		{"http", r.HTTPProto}, {"status", status}, {"bytes", fmt.Sprint(r.Bytes)},
		{"error class", string(r.ErrorClass)}, {"error", r.Error},
	}
}

func yes(b bool) string {
	if b {
		return "true"
	}
	return ""
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ParseServerReport reads what a server reported about the connection: a
// JSON object (echlab's /api/conn) or key=value lines (Cloudflare's
// /cdn-cgi/trace). It returns nil for any other body.
func ParseServerReport(body []byte) map[string]any {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil
	}
	if body[0] == '{' {
		var m map[string]any
		if json.Unmarshal(body, &m) == nil {
			return m
		}
		return nil
	}
	m := map[string]any{}
	for _, line := range strings.Split(string(body), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return nil
		}
		m[k] = v
	}
	return m
}
