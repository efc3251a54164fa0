package echlab_test

import (
	"os"
	"strings"
	"testing"
)

// TestCIChecksCrossBuilds keeps the README's promise that CI builds and
// vets the module for macOS and Windows: .ci/run runs those four commands,
// right after the native go vet.
func TestCIChecksCrossBuilds(t *testing.T) {
	b, err := os.ReadFile(".ci/run")
	if err != nil {
		t.Fatal(err)
	}
	ci := string(b)
	vet := strings.Index(ci, "\ngo vet ./...\n")
	if vet < 0 {
		t.Fatal(".ci/run does not run go vet ./...")
	}
	last := vet
	for _, cmd := range []string{"GOOS=darwin go build ./...", "GOOS=windows go build ./...", "GOOS=darwin go vet ./...", "GOOS=windows go vet ./..."} {
		i := strings.Index(ci, cmd)
		if i < last {
			t.Errorf(".ci/run does not run %q after go vet ./... and the commands before it", cmd)
			continue
		}
		last = i
	}
}
