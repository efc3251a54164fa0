//go:build !linux

package interop

// Reexec would run this program again in a new network namespace; there
// are none outside Linux, so it returns an error wrapping
// errors.ErrUnsupported.
func Reexec(args []string) error { return errNeedsLinux }
