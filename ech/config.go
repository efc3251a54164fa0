package ech

import (
	"fmt"
	"strings"

	"golang.org/x/crypto/cryptobyte"
)

// Version is the ECHConfig version (and extension code point) of RFC 9849.
const Version uint16 = 0xfe0d

// CipherSuite is an HPKE symmetric cipher suite: a KDF and an AEAD.
type CipherSuite struct {
	KDF  uint16
	AEAD uint16
}

// Extension is one ECHConfigExtension.
type Extension struct {
	Type uint16
	Data []byte
}

// Mandatory reports whether the high bit of the extension type is set, which
// means a client that does not understand it must skip the config.
func (e Extension) Mandatory() bool { return e.Type&0x8000 != 0 }

// Config is one ECHConfig of version 0xfe0d.
type Config struct {
	Version           uint16
	ConfigID          uint8
	KEM               uint16
	PublicKey         []byte
	CipherSuites      []CipherSuite
	MaximumNameLength uint8
	PublicName        string
	Extensions        []Extension

	// Raw is the whole encoded ECHConfig (version, length and contents) as
	// parsed or marshalled. It is the bytes that go into the HPKE info.
	Raw []byte
}

// SkippedConfig is an ECHConfig of a list that a parse did not return in
// ConfigList.Configs, kept so that the list can be re-encoded byte for
// byte and so that the reason can be shown. ParseConfigList skips only
// configs of unknown versions; ParseConfigListLenient also skips malformed
// and invalid configs and configs with mandatory extensions.
type SkippedConfig struct {
	Version uint16
	Raw     []byte // version, length and contents
	// Index is the position of this config in the whole list (known and
	// skipped configs counted together), so Marshal puts it back there.
	Index int
	// Err says why the config was skipped, always a *FieldError naming the
	// field: ErrUnsupported for an unknown version or an unknown mandatory
	// extension, ErrMalformed for contents that do not parse, ErrInvalid
	// for a rule of RFC 9849 broken (see Config.Validate).
	Err error
	// Config is the config as parsed when its contents could be read (an
	// invalid public_name, a mandatory extension), nil otherwise.
	Config *Config
}

// ConfigList is a parsed ECHConfigList.
type ConfigList struct {
	Configs []Config        // configs of version 0xfe0d, in list order
	Skipped []SkippedConfig // configs skipped as §4 says, each with its reason
	Raw     []byte          // the list as parsed, including its length prefix
}

// MandatoryExtensions returns the types of the extensions that have the
// mandatory bit set. A client that does not implement them must not use the
// config.
func (c *Config) MandatoryExtensions() []uint16 {
	var out []uint16
	for _, e := range c.Extensions {
		if e.Mandatory() {
			out = append(out, e.Type)
		}
	}
	return out
}

// ParseConfigList parses an ECHConfigList (with its 2-byte length prefix)
// strictly, as a server or an inspector does. Configs of unknown versions
// are skipped, as RFC 9849 §4 requires; an error is returned for malformed
// bytes and for the first known-version config that breaks the spec's rules
// (see Config.Validate). Clients use ParseConfigListLenient instead.
func ParseConfigList(b []byte) (*ConfigList, error) {
	entries, err := splitConfigList(b)
	if err != nil {
		return nil, err
	}
	list := &ConfigList{Raw: append([]byte(nil), b...)}
	for i, e := range entries {
		if e.version != Version {
			list.Skipped = append(list.Skipped, e.skip(i, unknownVersion(e.version), nil))
			continue
		}
		c, err := parseContents(e.contents)
		if err != nil {
			return nil, err
		}
		c.Version, c.Raw = e.version, e.raw
		if err := c.Validate(); err != nil {
			return nil, err
		}
		list.Configs = append(list.Configs, *c)
	}
	return list, nil
}

// configEntry is one ECHConfig of a list as framed: its version, its whole
// encoding and its contents, not yet parsed.
type configEntry struct {
	version  uint16
	raw      []byte
	contents cryptobyte.String
}

func (e configEntry) skip(index int, err error, c *Config) SkippedConfig {
	return SkippedConfig{Version: e.version, Raw: e.raw, Index: index, Err: err, Config: c}
}

// splitConfigList checks the framing of an ECHConfigList (the list length,
// at least one config, each config's version and length inside the list)
// and returns its entries. It does not look inside the contents.
func splitConfigList(b []byte) ([]configEntry, error) {
	s := cryptobyte.String(b)
	var body cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&body) || !s.Empty() {
		return nil, malformed("ECHConfigList", "length")
	}
	if len(body) < 4 {
		return nil, invalid("ECHConfigList", "length", "list must hold at least one config")
	}
	var out []configEntry
	for !body.Empty() {
		start := body
		var e configEntry
		if !body.ReadUint16(&e.version) || !body.ReadUint16LengthPrefixed(&e.contents) {
			return nil, malformed("ECHConfig", "length")
		}
		e.raw = append([]byte(nil), start[:len(start)-len(body)]...)
		out = append(out, e)
	}
	return out, nil
}

func unknownVersion(v uint16) error {
	return unsupported("ECHConfig", "version", fmt.Sprintf("version %#04x is not %#04x", v, Version))
}

// ParseConfig parses a single ECHConfig (version, length, contents) that
// must be of version 0xfe0d.
func ParseConfig(b []byte) (*Config, error) {
	s := cryptobyte.String(b)
	var version uint16
	var contents cryptobyte.String
	if !s.ReadUint16(&version) || !s.ReadUint16LengthPrefixed(&contents) || !s.Empty() {
		return nil, malformed("ECHConfig", "length")
	}
	if version != Version {
		return nil, unknownVersion(version)
	}
	c, err := parseContents(contents)
	if err != nil {
		return nil, err
	}
	c.Version, c.Raw = version, append([]byte(nil), b...)
	return c, c.Validate()
}

func parseContents(s cryptobyte.String) (*Config, error) {
	c := &Config{}
	var pub, suites, name, exts cryptobyte.String
	if !s.ReadUint8(&c.ConfigID) {
		return nil, malformed("ECHConfig", "config_id")
	}
	if !s.ReadUint16(&c.KEM) {
		return nil, malformed("ECHConfig", "kem_id")
	}
	if !s.ReadUint16LengthPrefixed(&pub) || len(pub) == 0 {
		return nil, malformed("ECHConfig", "public_key")
	}
	c.PublicKey = append([]byte(nil), pub...)
	if !s.ReadUint16LengthPrefixed(&suites) || len(suites) < 4 || len(suites)%4 != 0 {
		return nil, malformed("ECHConfig", "cipher_suites")
	}
	for !suites.Empty() {
		var cs CipherSuite
		suites.ReadUint16(&cs.KDF)
		suites.ReadUint16(&cs.AEAD)
		c.CipherSuites = append(c.CipherSuites, cs)
	}
	if !s.ReadUint8(&c.MaximumNameLength) {
		return nil, malformed("ECHConfig", "maximum_name_length")
	}
	if !s.ReadUint8LengthPrefixed(&name) || len(name) == 0 {
		return nil, malformed("ECHConfig", "public_name")
	}
	c.PublicName = string(name)
	if !s.ReadUint16LengthPrefixed(&exts) {
		return nil, malformed("ECHConfig", "extensions")
	}
	for !exts.Empty() {
		var e Extension
		var data cryptobyte.String
		if !exts.ReadUint16(&e.Type) || !exts.ReadUint16LengthPrefixed(&data) {
			return nil, malformed("ECHConfig", "extensions")
		}
		e.Data = append([]byte(nil), data...)
		c.Extensions = append(c.Extensions, e)
	}
	if !s.Empty() {
		return nil, &FieldError{Struct: "ECHConfig", Field: "length",
			Reason: fmt.Sprintf("%d trailing bytes after extensions", len(s)), Err: ErrMalformed}
	}
	return c, nil
}

// Validate checks the rules RFC 9849 puts on a config: a public_name that is
// a valid DNS name and not an IPv4 literal (§6.1.7), at least one cipher
// suite, a non-empty public key, and no duplicate extension types.
func (c *Config) Validate() error {
	if err := ValidatePublicName(c.PublicName); err != nil {
		return err
	}
	if len(c.PublicKey) == 0 {
		return invalid("ECHConfig", "public_key", "empty")
	}
	if len(c.CipherSuites) == 0 {
		return invalid("ECHConfig", "cipher_suites", "empty")
	}
	seen := map[uint16]bool{}
	for _, e := range c.Extensions {
		if seen[e.Type] {
			return invalid("ECHConfig", "extensions", fmt.Sprintf("duplicate extension type %#04x", e.Type))
		}
		seen[e.Type] = true
	}
	return nil
}

// ValidatePublicName applies RFC 9849 §6.1.7: a dot-separated sequence of LDH
// labels of at most 63 octets, not beginning or ending with a dot, whose last
// label is neither all digits nor "0x" followed by hex digits.
func ValidatePublicName(name string) error {
	if name == "" || len(name) > 255 {
		return invalid("ECHConfig", "public_name", "length must be 1..255")
	}
	if strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") {
		return invalid("ECHConfig", "public_name", fmt.Sprintf("%q begins or ends with a dot", name))
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if !isLDHLabel(l) {
			return invalid("ECHConfig", "public_name", fmt.Sprintf("%q has an invalid label %q", name, l))
		}
	}
	if last := labels[len(labels)-1]; isIPv4LiteralLabel(last) {
		return invalid("ECHConfig", "public_name", fmt.Sprintf("%q looks like an IPv4 literal", name))
	}
	return nil
}

func isLDHLabel(l string) bool {
	if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		ch := l[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-') {
			return false
		}
	}
	return true
}

func isIPv4LiteralLabel(l string) bool {
	if strings.Trim(l, "0123456789") == "" {
		return true
	}
	if len(l) >= 2 && (l[:2] == "0x" || l[:2] == "0X") {
		return strings.Trim(l[2:], "0123456789abcdefABCDEF") == ""
	}
	return false
}

// Marshal encodes the config (version 0xfe0d) and stores the result in Raw.
func (c *Config) Marshal() ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	var b cryptobyte.Builder
	b.AddUint16(Version)
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		b.AddUint8(c.ConfigID)
		b.AddUint16(c.KEM)
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(c.PublicKey) })
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			for _, cs := range c.CipherSuites {
				b.AddUint16(cs.KDF)
				b.AddUint16(cs.AEAD)
			}
		})
		b.AddUint8(c.MaximumNameLength)
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(c.PublicName)) })
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			for _, e := range c.Extensions {
				b.AddUint16(e.Type)
				b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(e.Data) })
			}
		})
	})
	out, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("ech: marshal ECHConfig: %w", err)
	}
	c.Version, c.Raw = Version, out
	return out, nil
}

// Marshal encodes the list with its 2-byte length prefix. Skipped configs go
// back to the position their Index names (or last, if the index is out of
// range), so a list parsed by ParseConfigList re-encodes to the same bytes.
func (l *ConfigList) Marshal() ([]byte, error) {
	total := len(l.Configs) + len(l.Skipped)
	at := make(map[int][]byte, len(l.Skipped))
	var tail [][]byte
	for _, s := range l.Skipped {
		if _, taken := at[s.Index]; taken || s.Index < 0 || s.Index >= total {
			tail = append(tail, s.Raw)
			continue
		}
		at[s.Index] = s.Raw
	}
	parts := make([][]byte, 0, total)
	next := 0
	for i := 0; i < total; i++ {
		if raw, ok := at[i]; ok {
			parts = append(parts, raw)
			continue
		}
		if next < len(l.Configs) {
			raw, err := l.Configs[next].Marshal()
			if err != nil {
				return nil, err
			}
			parts = append(parts, raw)
			next++
		}
	}
	return MarshalConfigList(append(parts, tail...)...)
}

// MarshalConfigList prefixes encoded ECHConfigs with the list length.
func MarshalConfigList(configs ...[]byte) ([]byte, error) {
	n := 0
	for _, c := range configs {
		n += len(c)
	}
	if n < 4 || n > 0xffff {
		return nil, invalid("ECHConfigList", "length", fmt.Sprintf("%d bytes is outside 4..65535", n))
	}
	out := make([]byte, 2, 2+n)
	out[0], out[1] = byte(n>>8), byte(n)
	for _, c := range configs {
		out = append(out, c...)
	}
	return out, nil
}
