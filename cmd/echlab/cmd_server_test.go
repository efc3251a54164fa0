package main

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"regexp"
	"testing"
	"time"

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
