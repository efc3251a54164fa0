package interop

import (
	"errors"
	"fmt"
)

// Sentinel errors of this package; returned errors wrap them.
var (
	// ErrNotIsolated reports that the process can reach a network other
	// than loopback, so a browser could fall back to the system resolver.
	ErrNotIsolated = errors.New("interop: not in an isolated network namespace")
	// ErrBrowser reports a browser that is missing or could not be set up.
	ErrBrowser = errors.New("interop: browser")
	// ErrTool reports a missing helper program (ethtool).
	ErrTool = errors.New("interop: missing tool")
	// ErrCaseFailed reports a case whose outcome is not the expected one.
	ErrCaseFailed = errors.New("interop: case failed")
)

// errNeedsLinux is what Isolated and Reexec return elsewhere than on
// Linux: the browsers are isolated in a Linux network namespace.
var errNeedsLinux = fmt.Errorf("interop: the browser harness needs Linux network namespaces: %w", errors.ErrUnsupported)
