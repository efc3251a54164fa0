package interop

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// chromiumFlags are the flags of every Chromium run: headless, no sandbox
// (root), and no background traffic.
var chromiumFlags = []string{"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
	"--disable-background-networking", "--disable-component-update", "--disable-sync",
	"--disable-default-apps", "--disable-extensions", "--no-default-browser-check"}

// chromiumSetup makes a fresh HOME with an NSS database trusting the lab CA
// and a fresh user data dir whose Local State turns on secure DNS through
// the lab DoH and ECH. The run dumps the page's DOM to stdout and writes a
// NetLog.
func chromiumSetup(l *Lab, c Case, dir string) ([]string, []string, error) {
	home := filepath.Join(dir, "home")
	if err := trustCA(filepath.Join(home, ".pki", "nssdb"), l.CAFile); err != nil {
		return nil, nil, err
	}
	profile := filepath.Join(dir, "profile")
	if err := os.MkdirAll(profile, 0o700); err != nil {
		return nil, nil, fmt.Errorf("interop: %w", err)
	}
	state := map[string]any{
		"dns_over_https": map[string]any{"mode": "secure", "templates": l.DoHURL},
		"ssl":            map[string]any{"ech_enabled": true},
	}
	b, _ := json.MarshalIndent(state, "", "  ")
	if err := os.WriteFile(filepath.Join(profile, "Local State"), b, 0o600); err != nil {
		return nil, nil, fmt.Errorf("interop: %w", err)
	}
	args := append([]string(nil), chromiumFlags...)
	args = append(args, "--user-data-dir="+profile, "--log-net-log="+filepath.Join(dir, "netlog.json"),
		"--dump-dom", l.URL(c.Host))
	return args, []string{"HOME=" + home}, nil
}
