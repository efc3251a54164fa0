//go:build !linux

package interop

import (
	"errors"
	"testing"
)

// TestHarnessNeedsLinux checks that, without Linux network namespaces,
// the harness refuses before starting the lab: Isolated (which Run checks
// before it starts anything) and Reexec return a one-line error wrapping
// errors.ErrUnsupported.
func TestHarnessNeedsLinux(t *testing.T) {
	const want = "interop: the browser harness needs Linux network namespaces: unsupported operation"
	for name, err := range map[string]error{"Isolated": Isolated(), "Reexec": Reexec([]string{"interop", "browsers"})} {
		if !errors.Is(err, errors.ErrUnsupported) || err.Error() != want {
			t.Errorf("%s = %v, want %q", name, err, want)
		}
	}
}
