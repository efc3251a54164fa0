package interop

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/echlab/echlab/lab/observe"
)

// createKeylog makes the empty SSLKEYLOGFILE (KeylogFile) of a run in dir,
// readable by its owner only: the browser appends its TLS secrets to it
// and keeps the file's mode.
func createKeylog(dir string) (string, error) {
	name := filepath.Join(dir, KeylogFile)
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return "", fmt.Errorf("interop: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("interop: %w", err)
	}
	return name, nil
}

// keylogRandoms returns the client randoms (lowercase hex, sorted) that an
// SSLKEYLOGFILE has lines for, whatever the label; none when the file does
// not exist. The browser has exited, so the file is complete.
func keylogRandoms(name string) ([]string, error) {
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("interop: %w", err)
	}
	defer f.Close()
	kl, err := observe.ParseKeylog(f)
	if err != nil {
		return nil, err
	}
	return slices.Sorted(maps.Keys(kl.Randoms)), nil
}

// checkKeylog compares the capture again with only the browser's own
// SSLKEYLOGFILE of the case (see KeylogFile) and no server key, for
// browsers whose keylog has ECH lines (Browser.keylogECH: Firefox), and
// checks that it opens every ECH connection the keys
// opened, to the same inner name: NSS logs ECH_SECRET and ECH_CONFIG
// (RFC 9850) keyed by the outer random. It sets KeylogOpened and adds a
// disagreement (failing a pass) for each flow it does not open. Other
// results, and those without a keylog file, are left alone.
func (l *Lab) checkKeylog(res *Result, capturePath string) error {
	if res.Observed == nil || !browsers[res.Browser].keylogECH {
		return nil
	}
	f, err := os.Open(filepath.Join(l.Dir, res.Dir, KeylogFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("interop: %w", err)
	}
	kl, err := observe.ParseKeylog(f)
	f.Close()
	if err != nil {
		return err
	}
	opts := observe.CompareOptions{}
	opts.UseKeylog(kl)
	c, err := os.Open(capturePath)
	if err != nil {
		return fmt.Errorf("interop: %w", err)
	}
	defer c.Close()
	rep, err := observe.Compare(c, opts)
	if err != nil {
		return err
	}
	byClient := map[string]*observe.Flow{}
	for _, fl := range rep.Flows {
		byClient[fl.Transport+" "+fl.Client.String()] = fl
	}
	o := res.Observed
	o.KeylogECH = len(kl.ECH)
	for _, want := range o.Flows {
		if want.ECH != observe.ECHReal {
			continue
		}
		got := byClient[want.Transport+" "+want.Client]
		if got != nil && got.ECH == observe.ECHReal && got.ECHOpenedBy == "keylog" && got.InnerSNI == want.InnerSNI {
			o.KeylogOpened++
			continue
		}
		o.Disagreements = append(o.Disagreements, fmt.Sprintf("the browser's %s does not open the ECH flow from %s (%s) without the server key", KeylogFile, want.Client, want.Transport))
		if res.Outcome == Pass {
			res.Outcome = Fail
			res.Why += "; but its SSLKEYLOGFILE does not open the ECH flow from " + want.Client
		}
	}
	return nil
}
