package observe

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	"github.com/echlab/echlab/ech"
)

// KeylogECH is what an SSLKEYLOGFILE says about one ECH ClientHello: its
// ECH_SECRET (the HPKE KEM shared secret) and ECH_CONFIG lines, both keyed
// by the ClientHelloOuter random (RFC 9850 §3.2).
type KeylogECH struct {
	Secret []byte
	Config *ech.Config
}

// Keylog is an SSLKEYLOGFILE (RFC 9850) as Compare uses it.
type Keylog struct {
	// Randoms holds every client_random (lowercase hex) that has a line,
	// whatever the label.
	Randoms map[string]bool
	// ECH holds, by outer client_random, the randoms that have both an
	// ECH_SECRET and a parseable ECH_CONFIG line.
	ECH map[string]*KeylogECH
	// Warnings name ECH lines that could not be used.
	Warnings []string
}

// ParseKeylog reads an SSLKEYLOGFILE. Comments, blank lines and lines that
// are not "LABEL <64 hex digits> <hex>" are skipped; an ECH_CONFIG that is
// not an ECHConfig, or an ECH_SECRET without its ECH_CONFIG, becomes a
// warning.
func ParseKeylog(r io.Reader) (*Keylog, error) {
	kl := &Keylog{Randoms: map[string]bool{}, ECH: map[string]*KeylogECH{}}
	secrets, configs := map[string][]byte{}, map[string]*ech.Config{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		fields := strings.Fields(sc.Text())
		if len(fields) != 3 || strings.HasPrefix(fields[0], "#") || len(fields[1]) != 64 {
			continue
		}
		random := strings.ToLower(fields[1])
		value, err1 := hex.DecodeString(fields[2])
		if _, err := hex.DecodeString(random); err != nil || err1 != nil {
			continue
		}
		kl.Randoms[random] = true
		switch fields[0] {
		case "ECH_SECRET":
			secrets[random] = value
		case "ECH_CONFIG":
			cfg, err := ech.ParseConfig(value)
			if err != nil {
				kl.Warnings = append(kl.Warnings, fmt.Sprintf("keylog line %d: ECH_CONFIG is not a usable ECHConfig: %v", n, err))
				continue
			}
			configs[random] = cfg
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("lab: reading keylog: %w", err)
	}
	for random, secret := range secrets {
		if cfg := configs[random]; cfg != nil {
			kl.ECH[random] = &KeylogECH{Secret: secret, Config: cfg}
		} else {
			kl.Warnings = append(kl.Warnings, fmt.Sprintf("keylog: ECH_SECRET for %s has no ECH_CONFIG line", random))
		}
	}
	return kl, nil
}

// ReadKeylog reads an SSLKEYLOGFILE (RFC 9850) and returns the set of
// client_random values (lowercase hex) it has secrets for, whatever the
// label. Comments and malformed lines are skipped. ParseKeylog also keeps
// the ECH secrets.
func ReadKeylog(r io.Reader) (map[string]bool, error) {
	kl, err := ParseKeylog(r)
	if err != nil {
		return nil, err
	}
	return kl.Randoms, nil
}

// UseKeylog puts a keylog's client randoms and ECH secrets into the
// options; its warnings go to the report.
func (o *CompareOptions) UseKeylog(kl *Keylog) {
	o.Keylog, o.ECHSecrets = kl.Randoms, kl.ECH
	o.keylogWarnings = kl.Warnings
}
