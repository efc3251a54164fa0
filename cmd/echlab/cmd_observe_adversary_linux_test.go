package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/echlab/echlab/internal/labtest"
	"golang.org/x/sys/unix"
)

// TestObserveAdversaryNetns runs `echlab observe --adversary` in a fresh
// network namespace, as the docker observer runs in the client's: a
// client in that namespace (this test, under group 0) is reset for the
// blocked name and served for another, the decisions are in the log, the
// client's leg (the ClientHello) in --client-capture, and once the
// observer stops on SIGTERM its rules are gone: the blocked name connects.
func TestObserveAdversaryNetns(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("the observer's interception needs root for its network namespace")
		}
		t.Skip("the observer's interception needs root for its network namespace")
	}
	dir := t.TempDir()
	file := func(name string) string { return filepath.Join(dir, name) }
	const spec = "block-sni secret.lab.test rst"
	cmd := exec.Command(echlabBin, "observe", "--iface", "lo", "--out", file("c.pcapng"), "--ready", file("ready"),
		"--poll", "50ms", "--adversary", spec, "--adversary-log", file("adversary.jsonl"),
		"--client-capture", file("client.pcapng"), "--intercept", "https/test=tcp/127.0.0.53:443")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	// The namespace is made (lo up, the server listening) before the
	// observer starts in it: a child starts in its forking thread's.
	ns := newNetns(t)
	defer ns.Close()
	fx := labtest.NewTLS(t)
	var ln net.Listener
	inNetns(t, ns, func() (err error) {
		if err = setUp("lo"); err != nil {
			return err
		}
		if ln, err = tls.Listen("tcp", "127.0.0.53:443", fx.Server); err != nil {
			return err
		}
		return cmd.Start()
	})
	defer ln.Close()
	defer cmd.Process.Kill()
	go serveHello(ln)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(file("ready")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("observer not ready:\n%s", stderr.String())
		}
	}
	hello := func(name string) (reply string) {
		inNetns(t, ns, func() error { reply = helloLine(name, fx); return nil })
		return reply
	}
	if got := hello("secret.lab.test"); got != "reset" {
		t.Errorf("observer on path, secret.lab.test: %s, want a reset", got)
	}
	if got := hello("public.lab.test"); got != "hello public.lab.test" {
		t.Errorf("observer on path, public.lab.test: %s, want it served", got)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil || !strings.Contains(stderr.String(), "interception removed") {
		t.Fatalf("observer on SIGTERM: %v\n%s", err, stderr.String())
	}
	if got := hello("secret.lab.test"); got != "hello secret.lab.test" {
		t.Errorf("observer stopped, secret.lab.test: %s, want a direct connection (no rule left)", got)
	}
	checkAdversaryLog(t, file("adversary.jsonl"), spec)
	leg, err := os.ReadFile(file("client.pcapng"))
	if err != nil || !bytes.Contains(leg, []byte("secret.lab.test")) {
		t.Errorf("client-leg capture (%d bytes, %v) lacks the reset ClientHello's SNI", len(leg), err)
	}
}

// checkAdversaryLog wants the rst of secret.lab.test and the pass of
// public.lab.test, each line with the column.
func checkAdversaryLog(t *testing.T, file, spec string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"secret.lab.test": "rst", "public.lab.test": "pass"}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var d struct{ Column, Action, Policy, SNI string }
		if err := json.Unmarshal([]byte(line), &d); err != nil || d.Column != spec {
			t.Errorf("log line %q: %v, column %q", line, err, d.Column)
			continue
		}
		if want[d.SNI] == d.Action && (d.Action == "pass" || d.Policy == spec) {
			delete(want, d.SNI)
		}
	}
	if len(want) > 0 {
		t.Errorf("adversary log lacks %v:\n%s", want, b)
	}
}

// newNetns makes a network namespace and returns a handle on it (open,
// it keeps the namespace).
func newNetns(t *testing.T) *os.File {
	t.Helper()
	type result struct {
		f   *os.File
		err error
	}
	done := make(chan result)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			done <- result{nil, err}
			return
		}
		f, err := os.Open("/proc/thread-self/ns/net")
		done <- result{f, err}
	}()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.f
}

// inNetns runs fn on a thread of its own moved into the namespace ns: the
// sockets fn opens belong to it. The thread is dropped afterwards.
func inNetns(t *testing.T, ns *os.File, fn func() error) {
	t.Helper()
	done := make(chan error)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- err
			return
		}
		done <- fn()
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// helloLine connects to 127.0.0.53:443 for name and returns the server's
// line, "reset" or the error.
func helloLine(name string, fx *labtest.TLS) string {
	d := &net.Dialer{Timeout: 3 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", "127.0.0.53:443", fx.Client(name, false))
	if err == nil {
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		var line string
		if line, err = bufio.NewReader(c).ReadString('\n'); err == nil {
			return strings.TrimSpace(line)
		}
	}
	if errors.Is(err, syscall.ECONNRESET) {
		return "reset"
	}
	return err.Error()
}

// serveHello answers each handshake with "hello NAME\n".
func serveHello(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			if tc := c.(*tls.Conn); tc.Handshake() == nil {
				fmt.Fprintf(tc, "hello %s\n", tc.ConnectionState().ServerName)
			}
		}()
	}
}

// setUp sets an interface of the calling thread's namespace up.
func setUp(name string) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}
