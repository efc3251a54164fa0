package conformance

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/internal/pki"
)

// Files NewEnv writes into its directory (besides pki's ca.crt and ca.key).
const (
	KeyFile   = "ech-good.pem"  // Env.Key as an RFC 9934 ECH PEM file (0600)
	OtherFile = "ech-other.pem" // Env.Other likewise
)

// Env is what every case runs in: the lab CA and the two ECH keys.
type Env struct {
	CA    *pki.CA  // the lab CA: the clients trust it; server certificates come from it
	Key   *ech.Key // the good key (config id 1, public_name public.lab.test, X25519): published by default, held by ServerGood
	Other *ech.Key // a second key (config id 2, same public name) no server holds unless a variant says so
}

// NewEnv makes a CA and both keys and saves them in dir (created if
// missing; private keys 0600).
func NewEnv(dir string) (*Env, error) {
	ca, err := pki.NewCA("echlab conformance CA")
	if err != nil {
		return nil, err
	}
	if err := ca.Save(dir); err != nil {
		return nil, err
	}
	env := &Env{CA: ca}
	for _, k := range []struct {
		id   uint8
		file string
		dst  **ech.Key
	}{{1, KeyFile, &env.Key}, {2, OtherFile, &env.Other}} {
		key, err := ech.GenerateKey(ech.KeyOptions{ConfigID: k.id, PublicName: PublicName})
		if err != nil {
			return nil, fmt.Errorf("conformance: ECH key %d: %w", k.id, err)
		}
		b, err := ech.MarshalPEM(key)
		if err != nil {
			return nil, fmt.Errorf("conformance: ECH key %d: %w", k.id, err)
		}
		if err := os.WriteFile(filepath.Join(dir, k.file), b, 0o600); err != nil {
			return nil, fmt.Errorf("conformance: %w", err)
		}
		*k.dst = key
	}
	return env, nil
}

// ConfigList returns the ECHConfigList holding only k's config: what DNS
// publishes for it and what a client is configured with.
func ConfigList(k *ech.Key) ([]byte, error) {
	raw := k.Config.Raw
	if len(raw) == 0 {
		c := k.Config // a copy: Marshal stores Raw, and k may be shared
		var err error
		if raw, err = c.Marshal(); err != nil {
			return nil, err
		}
	}
	return ech.MarshalConfigList(raw)
}
