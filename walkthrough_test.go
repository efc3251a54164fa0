//go:build unix

package echlab_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/echlab/echlab/internal/testutil"
)

// walkthroughTitle is the README section .ci/walkthrough.sh runs.
const walkthroughTitle = "The lab by hand"

// shBlocks returns the bodies of the ```sh blocks of text, in order.
func shBlocks(text string) []string {
	var blocks []string
	var cur []string
	in := false
	for _, line := range strings.Split(text, "\n") {
		switch {
		case !in && strings.TrimRight(line, " \t") == "```sh":
			in, cur = true, nil
		case in && strings.TrimRight(line, " \t") == "```":
			in = false
			blocks = append(blocks, strings.Join(cur, "\n")+"\n")
		case in:
			cur = append(cur, line)
		}
	}
	return blocks
}

// walkthroughPrint returns the script .ci/walkthrough.sh would run for the
// README file readme ("" for the repository's).
func walkthroughPrint(t *testing.T, readme string) string {
	t.Helper()
	bash := testutil.NeedTool(t, "bash")
	c := exec.Command(bash, ".ci/walkthrough.sh", "--print")
	if readme != "" {
		c.Env = append(os.Environ(), "WALKTHROUGH_README="+readme)
	}
	var stderr bytes.Buffer
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		t.Fatalf(".ci/walkthrough.sh --print: %v\n%s", err, stderr.String())
	}
	return string(out)
}

// TestWalkthroughRunsREADMEBlocksVerbatim: the script .ci/walkthrough.sh
// builds from README.md holds every ```sh block of "The lab by hand", in
// order and unedited, parses as bash, and the blocks walk through every
// step the section promises (keygen, resolver, server, split, each DNS
// transport with echlab query, dig, kdig over DoT and DoQ, curl DoH JSON,
// clients, capture, compare, rotation, ESNI, stop).
func TestWalkthroughRunsREADMEBlocksVerbatim(t *testing.T) {
	blocks := shBlocks(section(t, walkthroughTitle))
	if len(blocks) < 10 {
		t.Fatalf("README.md %q has %d sh blocks; the walkthrough has at least 10 steps", walkthroughTitle, len(blocks))
	}
	script := walkthroughPrint(t, "")
	rest := script
	for i, b := range blocks {
		j := strings.Index(rest, "\n"+b)
		if j < 0 {
			t.Fatalf("block %d is not in the generated script verbatim (after block %d):\n%s", i+1, i, b)
		}
		rest = rest[j+len(b):]
		if marker := fmt.Sprintf("== block %d/%d (README.md line ", i+1, len(blocks)); !strings.Contains(script, marker) {
			t.Errorf("generated script has no %q marker", marker)
		}
	}
	bash := testutil.NeedTool(t, "bash")
	syntax := exec.Command(bash, "-n")
	syntax.Stdin = strings.NewReader(script)
	if out, err := syntax.CombinedOutput(); err != nil {
		t.Fatalf("bash -n on the generated script: %v\n%s", err, out)
	}
	all := strings.Join(blocks, "")
	for _, want := range []string{
		"go install ./cmd/echlab", `cd "$(mktemp -d)"`,
		"echlab keygen", "echlab resolver ", "--publish secret.lab.test,keyset=shared,port=4443",
		"echlab server --keys keys --h3", "echlab split ", "echlab server --baseline --addr 127.0.0.1:9443",
		"udp://127.0.0.1:5353", "tcp://127.0.0.1:5353", "tls://127.0.0.1:8853",
		"https://127.0.0.1:8443/dns-query", "h3://127.0.0.1:8443/dns-query", "quic://127.0.0.1:8853",
		"echlab query @", "dig @127.0.0.1 -p 5353", "kdig ", "+tls-ca=pki/ca.crt", "curl ",
		"echlab client --dns", "--mode grease", "--h3 https://", "https://hidden.lab.test:4444/",
		"echlab observe --iface lo", "echlab compare capture.pcapng --keys keys --keys keys-split --keylog",
		"echlab keygen --keys keys --rotate --grace 0", "echlab esni keygen", "_esni.secret.lab.test TXT",
		"kill $(jobs -p)",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("the walkthrough's blocks no longer contain %q", want)
		}
	}
	for _, line := range strings.Split(all, "\n") {
		// kdig applies options in order: +quic after a +tls-… option.
		if strings.HasPrefix(line, "kdig ") && strings.Contains(line, "+quic") &&
			strings.Index(line, "+quic") < strings.LastIndex(line, "+tls-") {
			t.Errorf("kdig line has +quic before a +tls-… option: %s", line)
		}
	}
}

// writeFakeREADME writes a README with a "The lab by hand" section made of
// blocks and returns its path and the line of each block's fence.
func writeFakeREADME(t *testing.T, blocks ...string) (string, []int) {
	t.Helper()
	var b strings.Builder
	b.WriteString("# fake\n\n## " + walkthroughTitle + "\n\nText.\n\n")
	var lines []int
	for _, blk := range blocks {
		lines = append(lines, strings.Count(b.String(), "\n")+1)
		b.WriteString("```sh\n" + blk + "\n```\n\nMore text.\n\n")
	}
	b.WriteString("## Next\n\n```sh\necho not in the section\n```\n")
	p := filepath.Join(t.TempDir(), "README.md")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p, lines
}

// runWalkthrough runs .ci/walkthrough.sh on readme with extra environment
// and returns its combined output and exit status.
func runWalkthrough(t *testing.T, readme string, env ...string) (string, int) {
	t.Helper()
	for _, tool := range []string{"bash", "go", "dig", "kdig", "curl", "timeout"} {
		testutil.NeedTool(t, tool)
	}
	// Output goes to a file, not a pipe: a leftover background job holding
	// a pipe open would make the wait last as long as the job.
	f, err := os.Create(filepath.Join(t.TempDir(), "walkthrough.out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c := exec.Command("bash", ".ci/walkthrough.sh")
	c.Env = append(append(os.Environ(), "WALKTHROUGH_README="+readme), env...)
	c.Stdout, c.Stderr = f, f
	if err := c.Run(); err != nil && c.ProcessState == nil {
		t.Fatal(err)
	}
	out, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return string(out), c.ProcessState.ExitCode()
}

// alive reports whether pid is a live (not zombie) process.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	_, after, _ := strings.Cut(string(stat), ") ")
	return !strings.HasPrefix(after, "Z")
}

// TestWalkthroughNamesFailingBlock: a failing block stops the run with an
// exit status that is not 0, the message names the block and its README
// line, the .log files of the walkthrough's scratch folder are shown, later
// blocks and text outside the section do not run, and a background job a
// block left behind is killed.
func TestWalkthroughNamesFailingBlock(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "sleeper.pid")
	readme, lines := writeFakeREADME(t,
		`cd "$(mktemp -d)" && echo daemon-said-this > d.log`+"\n"+
			`sleep 300 & echo $! > "$WT_TEST_PIDFILE"`+"\necho block-one-ran",
		"echo block-two-ran\nfalse\necho after-false",
		"echo block-three-ran",
	)
	out, rc := runWalkthrough(t, readme, "WT_TEST_PIDFILE="+pidFile)
	if rc == 0 {
		t.Fatalf("exit status 0 with a failing block:\n%s", out)
	}
	want := fmt.Sprintf("walkthrough: FAILED in block 2 (README.md line %d)", lines[1])
	for _, s := range []string{"block-one-ran", "block-two-ran", want, "-- last lines of d.log\ndaemon-said-this"} {
		if !strings.Contains(out, "\n"+s) {
			t.Errorf("output lacks %q:\n%s", s, out)
		}
	}
	for _, s := range []string{"\nafter-false", "\nblock-three-ran", "\nnot in the section"} {
		if strings.Contains(out, s) {
			t.Errorf("output has %q: the run went on after the failure or left the section:\n%s", s, out)
		}
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("block 1 did not run: %v\n%s", err, out)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if alive(pid) {
		syscall.Kill(pid, syscall.SIGKILL)
		t.Errorf("block 1's background job (pid %d) outlived the run", pid)
	}
}

// TestWalkthroughTimeout: a block that hangs is cut off at
// WALKTHROUGH_TIMEOUT, with exit status 124 and the block named.
func TestWalkthroughTimeout(t *testing.T) {
	readme, lines := writeFakeREADME(t, "echo started", "sleep 60")
	start := time.Now()
	out, rc := runWalkthrough(t, readme, "WALKTHROUGH_TIMEOUT=2")
	if rc != 124 || !strings.Contains(out, "walkthrough: timed out after 2 s") {
		t.Fatalf("exit status %d, want 124 with a timeout message:\n%s", rc, out)
	}
	if want := fmt.Sprintf("FAILED in block 2 (README.md line %d)", lines[1]); !strings.Contains(out, want) {
		t.Errorf("output does not name the hung block (%q):\n%s", want, out)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("the run took %v with a 2 s timeout", d)
	}
}

// TestWalkthroughPassesAndPrintsBlocks: blocks that succeed run in order,
// from a fresh HOME outside the repository, each shown before it runs.
func TestWalkthroughPassesAndPrintsBlocks(t *testing.T) {
	readme, _ := writeFakeREADME(t, `echo "home=$HOME"`, `cd "$(mktemp -d)" && pwd > /dev/null && echo second`)
	out, rc := runWalkthrough(t, readme)
	if rc != 0 {
		t.Fatalf("exit status %d:\n%s", rc, out)
	}
	for _, s := range []string{"== block 1/2", "| echo \"home=$HOME\"", "\nhome=/tmp/echlab-walkthrough.", "\nsecond\n", "== walkthrough: all 2 blocks passed"} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q:\n%s", s, out)
		}
	}
}
