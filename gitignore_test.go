package echlab_test

import (
	"os"
	"os/exec"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/echlab/echlab/internal/testutil"
)

// outputFlagRE matches, in README.md, a flag whose value is a file or folder
// a command writes (or a key folder it reads), with a relative value:
// `--keys keys`, `-out keys/main`, `--log conn.jsonl`. Placeholders (DIR),
// "-", absolute paths and URLs do not match.
var outputFlagRE = regexp.MustCompile(`(?:^|\s)--?(out|keys|pki|ca-dir|archive|log|querylog|keylog|front-secret|json|csv|markdown|ready|until|key)[ =]([a-z0-9._][a-zA-Z0-9._/-]*)(?:\s|$)`)

// folderFlags are the output flags whose value is a folder.
var folderFlags = map[string]bool{"--out": true, "--keys": true, "--pki": true, "--ca-dir": true, "--archive": true}

// readmeOutputs returns the relative paths README.md's commands give to
// output flags, cleaned, with the flag that names each.
func readmeOutputs(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		for {
			m := outputFlagRE.FindStringSubmatchIndex(line)
			if m == nil {
				break
			}
			flag, val := line[m[2]:m[3]], path.Clean(line[m[4]:m[5]])
			if val != "." && !strings.HasPrefix(val, "..") && !boolFlagArg(flag, val) {
				out[val] = "--" + flag
			}
			line = line[m[5]:]
		}
	}
	return out
}

// boolFlagArg reports whether val, after a --json, --csv or --markdown that
// can also be a switch (echlab client --json URL), is not that flag's file.
func boolFlagArg(flag, val string) bool {
	switch flag {
	case "json", "csv", "markdown":
		return !slices.Contains([]string{".json", ".jsonl", ".csv", ".md"}, path.Ext(val))
	}
	return false
}

// ignored returns which of paths git ignores under .gitignore, tracked or
// not (check-ignore --no-index).
func ignored(t *testing.T, paths []string) []string {
	t.Helper()
	git := testutil.NeedTool(t, "git")
	if err := exec.Command(git, "rev-parse", "--git-dir").Run(); err != nil {
		t.Skip("not a git work tree")
	}
	c := exec.Command(git, "check-ignore", "--no-index", "--stdin")
	c.Stdin = strings.NewReader(strings.Join(paths, "\n") + "\n")
	b, err := c.Output()
	if err != nil && c.ProcessState.ExitCode() != 1 { // 1: none ignored
		t.Fatalf("git check-ignore: %v", err)
	}
	return strings.Fields(string(b))
}

// TestGitignoreCoversREADMEOutputs: every file or folder the README's
// commands write in the work tree, and private key material anywhere, is
// ignored by git; test vectors, samples and sources are not.
func TestGitignoreCoversREADMEOutputs(t *testing.T) {
	outputs := readmeOutputs(t)
	for _, want := range []string{"keys", "pki", "out"} {
		if _, ok := outputs[want]; !ok {
			t.Errorf("README.md no longer writes %q; readmeOutputs parsed %v", want, outputs)
		}
	}
	var must []string
	for p, flag := range outputs {
		if folderFlags[flag] {
			must = append(must, p+"/", p+"/ca.key")
		} else {
			must = append(must, p)
		}
	}
	must = append(must,
		"keys/keyset.json", "keys-split/key-7.pem", "pki/ca.key", "pki/server.key", "lab/esni/esni.pem",
		"conn.jsonl", "front.secret", "sslkeylog.txt", "out/capture.pcapng",
		"anywhere/ca.key", "cmd/echlab/x.pem", "lab/front.secret", "client/tls.keylog")
	mustNot := []string{
		"README.md", "go.mod", "go.sum", "client/keylog.go", "lab/observe/keylog.go", "ech/pem.go",
		"ech/testdata/rfc9934-figure1.pem", "lab/observe/testdata/ech-tls.pcapng",
		"notebooks/sample/flows.csv", "notebooks/sample/client.jsonl", "resolver/testdata/lab.test.zone",
	}
	got := ignored(t, append(slices.Clone(must), mustNot...))
	for _, p := range must {
		if !slices.Contains(got, p) {
			t.Errorf(".gitignore does not cover %s (README: %s)", p, outputs[strings.TrimSuffix(strings.TrimSuffix(p, "ca.key"), "/")])
		}
	}
	for _, p := range mustNot {
		if slices.Contains(got, p) {
			t.Errorf(".gitignore hides %s, which must stay tracked", p)
		}
	}
}
