package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestEchInspectTerminal: with no argument and a terminal on stdin,
// inspect prints its usage and exits 2 instead of waiting; with stdin a
// pipe it reads it.
func TestEchInspectTerminal(t *testing.T) {
	tty := openPTY(t)
	for _, sub := range []string{"ech", "esni"} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cmd := exec.CommandContext(ctx, echlabBin, sub, "inspect")
		var stderr bytes.Buffer
		cmd.Stdin, cmd.Stderr = tty, &stderr
		err := cmd.Run()
		timedOut := ctx.Err() != nil
		cancel()
		var ee *exec.ExitError
		if timedOut || !errors.As(err, &ee) || ee.ExitCode() != 2 ||
			!strings.Contains(stderr.String(), "Usage: echlab "+sub+" inspect") {
			t.Errorf("echlab %s inspect on a terminal: %v (timed out: %v)\n%s", sub, err, timedOut, stderr.String())
		}
	}
	raw, _ := hex.DecodeString(goTLSList)
	cmd := exec.Command(echlabBin, "ech", "inspect")
	cmd.Stdin = strings.NewReader(base64.StdEncoding.EncodeToString(raw))
	out, err := cmd.Output()
	if err != nil || !strings.Contains(string(out), "3 config(s) of version 0xfe0d") {
		t.Errorf("echlab ech inspect from a pipe: %v\n%s", err, out)
	}
}

// openPTY opens a pseudo-terminal and returns its terminal side.
func openPTY(t *testing.T) *os.File {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI must run this test: %v", err)
		}
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { ptmx.Close() })
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tty.Close() })
	return tty
}
