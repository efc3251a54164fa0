package echlab_test

import (
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// layoutRowRE matches a row of README.md's "## Layout" table: | `dir/` | what |.
var layoutRowRE = regexp.MustCompile("(?m)^\\| `([a-z0-9/_.-]+?)/?` \\|")

// TestReadmeLayoutMatchesTree checks the README's layout table against the
// module: every package folder (cmd/echlab's, internal's, the lab's three)
// has a row (programs under bench/ are covered by its row), and every row
// names a folder that exists, so that a reader
// finds each thing from the table.
func TestReadmeLayoutMatchesTree(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	start := strings.Index(text, "\n## Layout\n")
	if start < 0 {
		t.Fatal("README.md has no ## Layout section")
	}
	section := text[start+1:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	var rows []string
	for _, m := range layoutRowRE.FindAllStringSubmatch(section, -1) {
		rows = append(rows, strings.TrimSuffix(m[1], "/"))
	}
	if len(rows) == 0 {
		t.Fatal("no rows in the layout table")
	}
	for _, r := range rows {
		if st, err := os.Stat(r); err != nil || !st.IsDir() {
			t.Errorf("layout row %q names no folder", r)
		}
	}
	out, err := exec.Command("go", "list", "-f", "{{.Dir}}", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	wd, _ := os.Getwd()
	var pkgs []string
	for _, dir := range strings.Fields(string(out)) {
		pkgs = append(pkgs, strings.TrimPrefix(strings.TrimPrefix(dir, wd), "/"))
	}
	for _, rel := range pkgs {
		if rel == "" {
			continue // the module root holds only these repository tests
		}
		// A package is covered by its own row, or by the row of a folder
		// that is not itself a package (bench/'s programs).
		covered := slices.ContainsFunc(rows, func(r string) bool {
			return rel == r || strings.HasPrefix(rel, r+"/") && !slices.Contains(pkgs, r)
		})
		if !covered {
			t.Errorf("package folder %s has no row in README.md's layout table", rel)
		}
	}
}
