package lab

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/echlab/echlab/lab/capture"
	"github.com/echlab/echlab/lab/observe"
)

// FileCaptureKeys is the run's capture with its TLS secrets inside: a copy
// of capture.pcapng with a pcapng Decryption Secrets Block, so that
// Wireshark and tshark decrypt it without a separate keylog. It holds
// secrets and is written 0600.
const FileCaptureKeys = "capture-with-keys.pcapng"

// writeCaptureWithKeys writes FileCaptureKeys: the capture with the
// keylog and the outer-random aliases of ECH flows in a Decryption Secrets
// Block.
func writeCaptureWithKeys(dir string, rep *observe.Report) error {
	raw, err := os.ReadFile(filepath.Join(dir, FileCapture))
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	keylog, err := os.ReadFile(filepath.Join(dir, FileKeylog))
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	if aliases := observe.OuterAliases(keylog, rep.Flows); len(aliases) > 0 {
		keylog = append(append(bytes.Clone(keylog), "# the TLS 1.3 secrets of ECH connections again, keyed by the outer ClientHello random\n"...), aliases...)
	}
	out, err := capture.InsertDSB(raw, keylog)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(dir, FileCaptureKeys), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600) // secrets: 0600
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	if err := f.Chmod(0o600); err != nil { // an older copy may have other modes
		f.Close()
		return fmt.Errorf("lab: %w", err)
	}
	if _, err := f.Write(out); err != nil {
		f.Close()
		return fmt.Errorf("lab: writing %s: %w", FileCaptureKeys, err)
	}
	return f.Close()
}
