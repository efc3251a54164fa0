package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/echlab/echlab/lab/capture"
)

// TestRunReportsCaptureLoss: when the live capture says it lost packets
// (capture.ErrDropped, which lab/capture's tests provoke for real), the run
// still writes its reports but says the capture is incomplete in
// report.md and manifest.json, and Run returns the error.
func TestRunReportsCaptureLoss(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("live capture needs root (or CAP_NET_RAW)")
	}
	real := startLiveCapture
	t.Cleanup(func() { startLiveCapture = real })
	startLiveCapture = func(iface string, ports []int, w io.Writer) (func() error, error) {
		stop, err := real(iface, ports, w)
		if err != nil {
			return nil, err
		}
		return func() error {
			if err := stop(); err != nil {
				return err
			}
			return fmt.Errorf("%w: the kernel dropped 7 of 900 packets", capture.ErrDropped)
		}, nil
	}
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	res, err := Run(ctx, RunConfig{OutDir: out, Capture: CaptureLive, Scenarios: []string{"ech-shared"}, Transports: []string{DNSDoH}})
	if !errors.Is(err, capture.ErrDropped) {
		t.Fatalf("Run: %v, want capture.ErrDropped", err)
	}
	if res == nil || !strings.Contains(res.CaptureLoss, "dropped 7 of 900") || res.Failed != 0 || len(res.Rows) == 0 {
		t.Fatalf("result %+v", res)
	}
	md, _ := os.ReadFile(filepath.Join(out, FileReport))
	if !strings.Contains(string(md), "**Capture incomplete**: lab: the live capture lost packets: the kernel dropped 7 of 900 packets") {
		t.Errorf("report.md does not say the capture is incomplete:\n%.600s", md)
	}
	var m map[string]any
	b, _ := os.ReadFile(filepath.Join(out, FileManifest))
	if err := json.Unmarshal(b, &m); err != nil || !strings.Contains(fmt.Sprint(m["capture_loss"]), "dropped 7 of 900") {
		t.Errorf("manifest.json capture_loss = %v (%v)", m["capture_loss"], err)
	}
}
