package lab

import (
	"bytes"
	"errors"
	"net"
	"os"
	"strconv"
	"testing"
	"time"
)

// TestLiveCapture captures real loopback packets of a TLS connection with
// ECH and finds its SNI. It needs root (CI runs as root).
func TestLiveCapture(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("live capture needs root (or CAP_NET_RAW); run as root to test it")
	}
	l := newLabTLS(t)
	addr := serveTLS(t, NewRecorder(), l.server) // the recorder here is unused
	_, portStr, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portStr)
	var buf bytes.Buffer
	stop, err := StartLiveCapture("lo", []int{port}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	dialTLS(t, addr, l.client("secret.lab.test", true, "h2"))
	dialTLS(t, addr, l.client("plain.lab.test", false, "h2"))
	time.Sleep(100 * time.Millisecond)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	rep, err := Compare(&buf, CompareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Synthesized {
		t.Error("a live capture reads as synthesized")
	}
	if len(rep.Flows) != 2 {
		t.Fatalf("got %d flows, want 2: %+v", len(rep.Flows), rep.Flows)
	}
	if f := rep.Flows[0]; f.SNI != "public.lab.test" || f.ECH != ECHOuter {
		t.Errorf("ECH flow: SNI %q ECH %q warnings %v", f.SNI, f.ECH, f.Warnings)
	}
	if f := rep.Flows[1]; f.SNI != "plain.lab.test" || f.ECH != ECHNone || f.ServerVersion != 0x0304 {
		t.Errorf("plain flow: SNI %q ECH %q version %#x warnings %v", f.SNI, f.ECH, f.ServerVersion, f.Warnings)
	}
}

func TestLiveCaptureErrors(t *testing.T) {
	if _, err := StartLiveCapture("no-such-interface0", nil, &bytes.Buffer{}); err == nil {
		t.Error("a missing interface gave no error")
	}
	if os.Geteuid() != 0 {
		_, err := StartLiveCapture("lo", nil, &bytes.Buffer{})
		if !errors.Is(err, ErrNoPermission) {
			t.Errorf("without privilege: %v, want ErrNoPermission", err)
		}
	}
}
