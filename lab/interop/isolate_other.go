//go:build !linux

package interop

// Reexec would run this program again in a new network namespace; there
// are none outside Linux, so it returns an error wrapping
// errors.ErrUnsupported.
func Reexec(args []string) error { return errNeedsLinux }

// UseResolvConf would point the system resolver at the lab inside the
// namespace Reexec made; outside Linux it returns an error wrapping
// errors.ErrUnsupported.
func UseResolvConf(dir, nameserver string) error { return errNeedsLinux }
