// Package echlab_test checks promises the top-level README makes about the
// repository itself: its prerequisites and what .gitignore keeps out of git.
package echlab_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/echlab/echlab/internal/testutil"
)

// ciInstallScripts are the scripts .ci/run runs that apt-get install
// packages: .ci/run itself, and the docker stack's e2e.sh with its lib.sh.
var ciInstallScripts = []string{".ci/run", "lab/docker/e2e.sh", "lab/docker/lib.sh"}

// installRE matches bash's `need+=(pkg …)` and `tools+=(pkg …)`.
var installRE = regexp.MustCompile(`\b(?:need|tools)\+=\(([^)]*)\)`)

// section returns the text of README.md's "## title" section.
func section(t *testing.T, title string) string {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "\n## "+title+"\n")
	if !ok {
		t.Fatalf("README.md has no %q section", "## "+title)
	}
	if i := strings.Index(rest, "\n## "); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

// readmePackages returns the package names in the second column of the
// Prerequisites table ("| feature | Debian packages |").
func readmePackages(t *testing.T) []string {
	t.Helper()
	text := section(t, "Prerequisites")
	_, table, ok := strings.Cut(text, "| feature | Debian packages |\n")
	if !ok {
		t.Fatal("README.md Prerequisites: no \"| feature | Debian packages |\" table")
	}
	var pkgs []string
	for _, line := range strings.Split(table, "\n") {
		cells := strings.Split(line, "|")
		if !strings.HasPrefix(line, "|") || len(cells) != 4 {
			break
		}
		for _, m := range regexp.MustCompile("`([a-z0-9.+-]+)`").FindAllStringSubmatch(cells[2], -1) {
			pkgs = append(pkgs, m[1])
		}
	}
	return pkgs
}

// ciPackages returns every package the CI scripts may apt-get install.
func ciPackages(t *testing.T) []string {
	t.Helper()
	var pkgs []string
	for _, f := range ciInstallScripts {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range installRE.FindAllStringSubmatch(string(b), -1) {
			pkgs = append(pkgs, strings.Fields(m[1])...)
		}
	}
	return pkgs
}

// TestPrerequisitePackagesMatchCI: the README's table of Debian packages
// and what CI installs name the same packages, so neither can drift.
func TestPrerequisitePackagesMatchCI(t *testing.T) {
	readme, ci := readmePackages(t), ciPackages(t)
	if len(readme) == 0 || len(ci) == 0 {
		t.Fatalf("README lists %d packages, CI installs %d", len(readme), len(ci))
	}
	for _, p := range readme {
		if !slices.Contains(ci, p) {
			t.Errorf("README.md Prerequisites lists %s, which no CI script (%s) installs", p, strings.Join(ciInstallScripts, ", "))
		}
	}
	for _, p := range ci {
		if !slices.Contains(readme, p) {
			t.Errorf("CI installs %s, missing from README.md's Prerequisites table", p)
		}
	}
	slices.Sort(readme)
	if d := slices.Compact(slices.Clone(readme)); len(d) != len(readme) {
		t.Errorf("README.md Prerequisites lists a package twice: %v", readme)
	}
}

// TestPrerequisiteGoVersion: the Go release the README tells to download is
// the one go.mod asks for.
func TestPrerequisiteGoVersion(t *testing.T) {
	mod, err := os.ReadFile("go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(mod)
	if m == nil {
		t.Fatal("go.mod has no go line")
	}
	text := section(t, "Prerequisites")
	for _, want := range []string{
		"https://go.dev/dl/go" + string(m[1]) + ".linux-amd64.tar.gz",
		"-xzf go" + string(m[1]) + ".linux-amd64.tar.gz",
		"go version go" + string(m[1]) + " linux/amd64",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("README.md Prerequisites does not say %q (go.mod: go %s)", want, m[1])
		}
	}
}

// TestPrerequisiteEchlabOnPath runs the README's two ways of putting echlab
// on PATH (go install, with GOBIN standing in for ~/go/bin, and go build -o)
// and then `echlab help` from each.
func TestPrerequisiteEchlabOnPath(t *testing.T) {
	goBin := testutil.NeedTool(t, "go")
	text := section(t, "Prerequisites")
	for _, cmd := range []string{"go install ./cmd/echlab", "go build -o ~/bin/echlab ./cmd/echlab", "echlab help"} {
		if !strings.Contains(text, "    "+cmd) {
			t.Fatalf("README.md Prerequisites has no %q line", cmd)
		}
	}
	gobin, home := t.TempDir(), t.TempDir()
	install := exec.Command(goBin, "install", "./cmd/echlab")
	install.Env = append(os.Environ(), "GOBIN="+gobin)
	build := exec.Command(goBin, "build", "-o", filepath.Join(home, "bin", "echlab"), "./cmd/echlab")
	for _, c := range []*exec.Cmd{install, build} {
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(c.Args, " "), err, out)
		}
	}
	for _, bin := range []string{filepath.Join(gobin, "echlab"), filepath.Join(home, "bin", "echlab")} {
		out, err := exec.Command(bin, "help").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "keygen") || !strings.Contains(string(out), "resolver") {
			t.Errorf("%s help: %v\n%s", bin, err, out)
		}
	}
}
