// Package testutil holds helpers shared by the tests of several packages.
package testutil

import (
	"os"
	"os/exec"
	"testing"
)

// NeedTool returns the path of an external program a test needs (dig,
// kdig, tshark, …). Outside CI a missing tool skips the test; under CI
// (CI=true, where .ci/run installs every tool) it fails it, so that a test
// can never pass by not running.
func NeedTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed, and CI must run this test (.ci/run installs it)", name)
		}
		t.Skipf("%s not installed; run .ci/run or install it to run this test", name)
	}
	return p
}
