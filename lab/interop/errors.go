package interop

import "errors"

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
