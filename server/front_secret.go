package server

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// FrontSecretSize is the size of the secret LoadFrontSecret creates.
const FrontSecretSize = 32

// minFrontSecret is the shortest secret LoadFrontSecret accepts from a
// file (HMAC-SHA256 keys shorter than this are weak).
const minFrontSecret = 16

// NewFrontSecret returns FrontSecretSize random bytes.
func NewFrontSecret() ([]byte, error) {
	b := make([]byte, FrontSecretSize)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("server: front secret: %w", err)
	}
	return b, nil
}

// LoadFrontSecret reads the secret a split front shares with its backends
// (SplitConfig.FrontSecret, Config.FrontSecret) from path. A missing file
// is created, mode 0600, with FrontSecretSize random bytes, so the first
// of the two processes to start makes it and the other reads it. The file
// holds the raw bytes; one shorter than 16 bytes is an error.
func LoadFrontSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createFrontSecret(path)
	}
	if err != nil {
		return nil, fmt.Errorf("server: front secret: %w", err)
	}
	if len(b) < minFrontSecret {
		return nil, fmt.Errorf("%w: front secret %s has %d bytes, want at least %d", ErrConfig, path, len(b), minFrontSecret)
	}
	return b, nil
}

// createFrontSecret writes a fresh secret to path atomically (a 0600
// temporary file hard-linked into place, so nobody reads it half
// written); if another process created it meanwhile, that one is read.
func createFrontSecret(path string) ([]byte, error) {
	b, err := NewFrontSecret()
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("server: front secret: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".front-secret-*.tmp") // mode 0600
	if err != nil {
		return nil, fmt.Errorf("server: front secret: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.Write(b)
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return nil, fmt.Errorf("server: front secret: %w", werr)
	}
	if err := os.Link(tmp.Name(), path); errors.Is(err, fs.ErrExist) {
		return LoadFrontSecret(path)
	} else if err != nil {
		return nil, fmt.Errorf("server: front secret: %w", err)
	}
	return b, nil
}
