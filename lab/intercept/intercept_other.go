//go:build !linux

package intercept

import (
	"errors"
	"fmt"
)

// Start needs Linux (nftables); elsewhere it returns an error wrapping
// errors.ErrUnsupported.
func Start(cfg Config) (*Intercept, error) {
	return nil, fmt.Errorf("intercept: redirecting a namespace's traffic needs Linux nftables: %w", errors.ErrUnsupported)
}

// Installed needs Linux (nftables); elsewhere it returns an error wrapping
// errors.ErrUnsupported.
func Installed(table string) (bool, error) {
	return false, fmt.Errorf("intercept: nftables needs Linux: %w", errors.ErrUnsupported)
}
