package ech

import (
	"errors"
	"fmt"
	"strings"
)

// ErrNoUsableConfig reports a well-framed ECHConfigList in which every
// config was skipped. The error returned with it is a *NoUsableConfigError.
var ErrNoUsableConfig = errors.New("ech: no usable ECHConfig in the list")

// NoUsableConfigError lists every config of an ECHConfigList that was
// skipped and why, when none was left to use.
type NoUsableConfigError struct {
	Skipped []SkippedConfig // in list order
}

// Error names each skipped config: its index, its config_id when readable,
// and the reason.
func (e *NoUsableConfigError) Error() string {
	parts := make([]string, len(e.Skipped))
	for i := range e.Skipped {
		parts[i] = e.Skipped[i].String()
	}
	return ErrNoUsableConfig.Error() + ": " + strings.Join(parts, "; ")
}

// Unwrap returns ErrNoUsableConfig and the reason of each skipped config,
// so errors.Is finds ErrNoUsableConfig as well as ErrInvalid, ErrMalformed
// or ErrUnsupported when one of the configs was skipped for that.
func (e *NoUsableConfigError) Unwrap() []error {
	out := []error{ErrNoUsableConfig}
	for _, s := range e.Skipped {
		if s.Err != nil {
			out = append(out, s.Err)
		}
	}
	return out
}

// ConfigID returns the config_id of a skipped config of version 0xfe0d when
// its contents are long enough to hold one.
func (s *SkippedConfig) ConfigID() (uint8, bool) {
	if s.Version != Version || len(s.Raw) < 5 {
		return 0, false
	}
	return s.Raw[4], true
}

// Bad reports whether the config breaks the wire format or a rule of the
// spec (ErrMalformed, ErrInvalid), rather than being well formed but of a
// version or with a mandatory extension this package does not implement.
func (s *SkippedConfig) Bad() bool {
	return errors.Is(s.Err, ErrMalformed) || errors.Is(s.Err, ErrInvalid)
}

// String describes the skipped config as "config [index] (config_id N):
// reason".
func (s *SkippedConfig) String() string {
	id := fmt.Sprintf("version %#04x", s.Version)
	if cid, ok := s.ConfigID(); ok {
		id = fmt.Sprintf("config_id %d", cid)
	}
	reason := "skipped"
	if s.Err != nil {
		reason = s.Err.Error()
	}
	return fmt.Sprintf("config [%d] (%s): %s", s.Index, id, reason)
}

// ParseConfigListLenient parses an ECHConfigList the way RFC 9849 asks a
// client to read one. The framing must be valid: a list whose length
// prefixes are broken is an error (a *FieldError, ErrMalformed or
// ErrInvalid), as with ParseConfigList. Inside a well-framed list, every
// config a client must or should ignore is skipped, not fatal, and lands in
// ConfigList.Skipped with its reason: an unknown version (§4), contents that
// do not parse, a config that fails Config.Validate (an invalid public_name,
// §6.1), or a mandatory extension, since this package implements no
// ECHConfig extension (§4.2). The configs left are in ConfigList.Configs.
// Whether their KEM and cipher suites are implemented is for the caller to
// decide (client.SelectConfig does it for crypto/tls).
//
// When no config is left, the list is returned together with a
// *NoUsableConfigError (errors.Is ErrNoUsableConfig) that says why each was
// skipped. The list always re-marshals to the bytes given.
func ParseConfigListLenient(b []byte) (*ConfigList, error) {
	entries, err := splitConfigList(b)
	if err != nil {
		return nil, err
	}
	list := &ConfigList{Raw: append([]byte(nil), b...)}
	for i, e := range entries {
		c, err := parseEntry(e)
		if err != nil {
			list.Skipped = append(list.Skipped, e.skip(i, err, c))
			continue
		}
		list.Configs = append(list.Configs, *c)
	}
	if len(list.Configs) == 0 {
		return list, &NoUsableConfigError{Skipped: list.Skipped}
	}
	return list, nil
}

// parseEntry reads one framed config for a client. On an error it returns
// the parsed config too when the contents could be read.
func parseEntry(e configEntry) (*Config, error) {
	if e.version != Version {
		return nil, unknownVersion(e.version)
	}
	c, err := parseContents(e.contents)
	if err != nil {
		return nil, err
	}
	c.Version, c.Raw = e.version, e.raw
	if err := c.Validate(); err != nil {
		return c, err
	}
	if m := c.MandatoryExtensions(); len(m) > 0 {
		return c, unsupported("ECHConfig", "extensions",
			fmt.Sprintf("mandatory extension %#04x is not implemented", m[0]))
	}
	return c, nil
}
