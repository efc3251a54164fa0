package client

import (
	"crypto/hpke"
	"fmt"
	"slices"
	"strings"

	"github.com/echlab/echlab/ech"
)

// SelectConfig parses an ECHConfigList as a client must (see
// ech.ParseConfigListLenient) and picks the first config that crypto/tls
// can use: a public_name it accepts, its KEMs, KDFs and AEADs, no mandatory
// extension. Configs that are malformed or invalid inside a well-framed list
// are skipped, as RFC 9849 §4 and §6.1 ask; a list whose framing is broken
// is an error. It returns a list holding only the picked config, so that
// the config reported is the one offered. When no config is usable, the
// error wraps ErrUnsupported and an *ech.NoUsableConfigError that says why
// each config was skipped.
func SelectConfig(list []byte) ([]byte, *ech.Config, error) {
	parsed, err := ech.ParseConfigListLenient(list)
	if parsed == nil {
		return nil, nil, err
	}
	skipped := parsed.Skipped
	for i := range parsed.Configs {
		c := &parsed.Configs[i]
		if why := goUnsupported(c); why != nil {
			skipped = append(skipped, ech.SkippedConfig{Version: c.Version, Raw: c.Raw,
				Index: indexOf(parsed, i), Err: why, Config: c})
			continue
		}
		offer, err := ech.MarshalConfigList(c.Raw)
		if err != nil {
			return nil, nil, err
		}
		return offer, c, nil
	}
	slices.SortFunc(skipped, func(a, b ech.SkippedConfig) int { return a.Index - b.Index })
	return nil, nil, fmt.Errorf("%w: %w", ErrUnsupported, &ech.NoUsableConfigError{Skipped: skipped})
}

// indexOf returns the position in the whole list of parsed.Configs[i].
func indexOf(parsed *ech.ConfigList, i int) int {
	at := i
	for _, s := range parsed.Skipped {
		if s.Index <= at {
			at++
		}
	}
	return at
}

// goUnsupported mirrors crypto/tls's pickECHConfig, with the same
// crypto/hpke constructors, so that the config picked here is the one
// crypto/tls will use. It says why crypto/tls would pass the config over,
// or returns nil.
func goUnsupported(c *ech.Config) error {
	if !goValidDNSName(c.PublicName) {
		return unusable("public_name", fmt.Sprintf("crypto/tls does not accept %q (it wants at least two labels, at most 253 octets)", c.PublicName))
	}
	if m := c.MandatoryExtensions(); len(m) > 0 {
		return unusable("extensions", fmt.Sprintf("mandatory extension %#04x is not implemented", m[0]))
	}
	kem, err := hpke.NewKEM(c.KEM)
	if err != nil {
		return unusable("kem_id", fmt.Sprintf("KEM %#04x is not implemented by crypto/tls", c.KEM))
	}
	if _, err := kem.NewPublicKey(c.PublicKey); err != nil {
		return unusable("public_key", fmt.Sprintf("not a valid %s key: %v", ech.KEMName(c.KEM), err))
	}
	for _, cs := range c.CipherSuites {
		_, kerr := hpke.NewKDF(cs.KDF)
		_, aerr := hpke.NewAEAD(cs.AEAD)
		if kerr == nil && aerr == nil {
			return nil
		}
	}
	return unusable("cipher_suites", "no suite whose KDF and AEAD crypto/tls implements")
}

func unusable(field, reason string) error {
	return &ech.FieldError{Struct: "ECHConfig", Field: field, Reason: reason, Err: ech.ErrUnsupported}
}

// goValidDNSName is crypto/tls's validDNSName: at most 253 octets, at least
// two labels, each non-empty LDH without a hyphen at either end. It is laxer
// than ech.ValidatePublicName (no IPv4-literal rule), which runs first, and
// stricter on single-label names.
func goValidDNSName(name string) bool {
	if len(name) > 253 {
		return false
	}
	labels := strings.Split(name, ".")
	if len(labels) <= 1 {
		return false
	}
	for _, l := range labels {
		if l == "" || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			ch := l[i]
			if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-') {
				return false
			}
		}
	}
	return true
}
