package conformance

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
)

var updateReadme = flag.Bool("update-readme", false, "rewrite the README's conformance table from wantGrades")

// readmeRows is the README's table body: the catalogue with the grades
// TestCatalogue asserts.
func readmeRows() string {
	var b strings.Builder
	for _, c := range Catalogue() {
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", c.Name, c.Expect.Level, c.Server,
			wantGrades[c.Name][ClientEchlab], wantGrades[c.Name][ClientGo])
	}
	return b.String()
}

// TestReadmeConformanceTable keeps the README's table equal to the
// measured grades (go test -run TestReadmeConformanceTable -update-readme
// rewrites it).
func TestReadmeConformanceTable(t *testing.T) {
	const file = "../../README.md"
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	head := "<!-- conformance-table -->\n| case | level | server | echlab | go |\n| --- | --- | --- | --- | --- |\n"
	start := strings.Index(text, head)
	end := strings.Index(text, "<!-- /conformance-table -->")
	if start < 0 || end < start {
		t.Fatal("README.md has no conformance table between the markers")
	}
	got := text[start+len(head) : end]
	if got == readmeRows() {
		return
	}
	if *updateReadme {
		if err := os.WriteFile(file, []byte(text[:start+len(head)]+readmeRows()+text[end:]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("README's conformance table differs from the measured grades; want:\n%s", readmeRows())
}
