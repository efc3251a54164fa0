package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/internal/testutil"
)

// checkListening dials addr and completes a TLS handshake for name,
// without verifying the lab CA's certificate (the point is that the
// process serves TLS there).
func checkListening(t *testing.T, addr, name string) {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{ServerName: name, InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("TLS to %s: %v", addr, err)
	}
	c.Close()
}

func TestServerCommandStartsAndStops(t *testing.T) {
	ready := regexp.MustCompile(`^echlab server: https://public\.lab\.test/ \(tcp (127\.0\.0\.1:\d+)`)
	d, addr := startDaemon(t, time.Minute, ready, "server", "--addr", "127.0.0.1:0", "--pki", "pki", "--keys", "keys", "--log", "")
	checkListening(t, addr, "public.lab.test")
	if code := d.stop(t, 10*time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0", code)
	}
}

func TestSplitCommandStartsAndStops(t *testing.T) {
	backend, got := recordingBackend(t)
	ready := regexp.MustCompile(`^echlab split: (127\.0\.0\.1:\d+), routes `)
	d, addr := startDaemon(t, time.Minute, ready, "split", "--addr", "127.0.0.1:0", "--pki", "pki", "--keys", "keys",
		"--route", "secret.lab.test="+backend, "--log", "")
	// A ClientHello without ECH is passed through by its plain SNI.
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "secret.lab.test", InsecureSkipVerify: true})
	if err == nil {
		c.Close()
	}
	select {
	case b := <-got:
		if len(b) < 5 || b[0] != 0x16 || !bytes.Contains(b, []byte("secret.lab.test")) {
			t.Errorf("backend got % x, want the ClientHello for secret.lab.test", b)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the backend got nothing")
	}
	if code := d.stop(t, 10*time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0", code)
	}
}

// recordingBackend accepts one TCP connection, reads its first bytes,
// hangs up and sends them on the channel.
func recordingBackend(t *testing.T) (string, chan []byte) {
	t.Helper()
	got := make(chan []byte, 1)
	addr := testutil.ServeOnce(t, func(c net.Conn) {
		c.SetReadDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
		buf := make([]byte, 4096)
		n, _ := io.ReadAtLeast(c, buf, 5)
		got <- buf[:n]
	})
	return addr, got
}

// TestServerPrintsECHOnStdout: echlab server and echlab split print what
// they serve on stdout, as keygen does (the ech= value of the published
// list of --keys, at start).
func TestServerPrintsECHOnStdout(t *testing.T) {
	for _, args := range [][]string{
		{"server", "--addr", "127.0.0.1:0"},
		{"split", "--addr", "127.0.0.1:0", "--route", "secret.lab.test=127.0.0.1:9"},
	} {
		t.Run(args[0], func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(echlabBin, append(args, "--keys", "k", "--pki", "pki")...)
			cmd.Dir = dir
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill() //nolint:errcheck
			line := make(chan string, 1)
			go func() {
				sc := bufio.NewScanner(stdout)
				for sc.Scan() {
					line <- sc.Text()
				}
				close(line)
			}()
			var first string
			select {
			case first = <-line:
			case <-time.After(30 * time.Second):
				t.Fatal("nothing on stdout within 30 s")
			}
			ks, err := ech.LoadKeySet(filepath.Join(dir, "k"))
			if err != nil {
				t.Fatal(err)
			}
			list, _ := ks.ConfigList()
			if want := "ech=" + base64.StdEncoding.EncodeToString(list); first != want {
				t.Fatalf("stdout %q, want %q", first, want)
			}
			cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck
			for range line {
			}
			cmd.Wait() //nolint:errcheck
		})
	}
}
