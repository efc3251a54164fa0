package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"
)

// echlabBin is the echlab binary TestMain builds once for the tests that
// run it as a subprocess (exit codes, signals, real stdout and stderr).
var echlabBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "echlab-cli-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	echlabBin = filepath.Join(dir, "echlab")
	if out, err := exec.Command("go", "build", "-o", echlabBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building echlab: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cliResult is what one run of the binary did.
type cliResult struct {
	stdout, stderr string
	code           int
}

// runCLI runs echlab with args in dir (a fresh temporary folder when
// empty), bounded by timeout, and returns its output and exit status.
func runCLI(t *testing.T, dir string, timeout time.Duration, args ...string) cliResult {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, echlabBin, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("echlab %q did not finish within %v\nstderr:\n%s", args, timeout, stderr.String())
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("echlab %q: %v", args, err)
	}
	return cliResult{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

// daemon is a long-running echlab subcommand (server, split) under test.
type daemon struct {
	cmd  *exec.Cmd
	dir  string // its working folder
	done chan error
}

// startDaemon runs echlab with args in a temporary folder and waits (up
// to timeout) for a stderr line matching ready; it returns the daemon and
// the line's first submatch. The process is killed at cleanup if a test
// leaves it running.
func startDaemon(t *testing.T, timeout time.Duration, ready *regexp.Regexp, args ...string) (*daemon, string) {
	t.Helper()
	cmd := exec.Command(echlabBin, args...)
	cmd.Dir = t.TempDir()
	pr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemon{cmd: cmd, dir: cmd.Dir, done: make(chan error, 1)}
	t.Cleanup(func() { cmd.Process.Kill() }) //nolint:errcheck // it may have exited
	found := make(chan string, 1)
	var seen bytes.Buffer
	go func() {
		sc := bufio.NewScanner(pr)
		matched := false
		for sc.Scan() {
			if !matched {
				seen.WriteString(sc.Text() + "\n")
				if m := ready.FindStringSubmatch(sc.Text()); m != nil {
					matched = true
					found <- m[1]
				}
			}
		}
		close(found)
		io.Copy(io.Discard, pr) //nolint:errcheck
		d.done <- cmd.Wait()
	}()
	select {
	case m, ok := <-found:
		if !ok {
			t.Fatalf("echlab %q exited before printing a line matching %s:\n%s", args, ready, seen.String())
		}
		return d, m
	case <-time.After(timeout):
		t.Fatalf("echlab %q printed no line matching %s within %v", args, ready, timeout)
	}
	return nil, ""
}

// stop sends SIGTERM and waits (up to timeout) for the process to exit;
// it returns the exit status.
func (d *daemon) stop(t *testing.T, timeout time.Duration) int {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	return d.wait(t, timeout)
}

// wait waits (up to timeout) for the process to exit and returns the
// exit status.
func (d *daemon) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case err := <-d.done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(timeout):
		t.Fatalf("echlab did not exit within %v", timeout)
	}
	return -1
}
