package interop

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// chromiumFlags are the flags of every Chromium run: headless, no sandbox
// (root), and no background traffic.
var chromiumFlags = []string{"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
	"--disable-background-networking", "--disable-component-update", "--disable-sync",
	"--disable-default-apps", "--disable-extensions", "--no-default-browser-check",
	// Chromium waits for the HTTPS record only a little after the A answer
	// (a fraction of the A query's time). On a loaded machine the answer
	// sometimes lost that race (NetLog: HOST_RESOLVER_DNS_TASK_TIMEOUT, the
	// HTTPS transaction aborted), and the browser sent GREASE instead of
	// the published config. Wait at least 2 s for it, over DoH (Secure)
	// and over the system resolver (Insecure: Do53, as in secure DNS mode
	// automatic or off), where Chromium's own wait is a few ms: the
	// conformance suite's oversized-list-do53 case (a truncated UDP answer
	// retried over TCP) came out GREASE in 2 of 9 runs without it (the
	// HTTPS query abandoned 6 ms after the A answer, while the TCP retry
	// was under way), which measured that wait, not how the browser
	// handles a truncated answer. Chromium reads one --enable-features
	// switch only: every parameter is in this one.
	httpsSvcbFeature + "UseDnsHttpsSvcbSecureExtraTimeMin/2s/UseDnsHttpsSvcbSecureExtraTimeMax/5s/" +
		"UseDnsHttpsSvcbInsecureExtraTimeMin/2s/UseDnsHttpsSvcbInsecureExtraTimeMax/5s"}

// httpsSvcbFeature starts the --enable-features switch of chromiumFlags
// that sets how long Chromium waits for an HTTPS record after the A
// answer.
const httpsSvcbFeature = "--enable-features=UseDnsHttpsSvcb:"

// chromiumSetup makes a fresh HOME with an NSS database trusting the lab CA
// and a fresh user data dir whose Local State turns on secure DNS through
// the lab DoH and ECH. The run dumps the page's DOM to stdout and writes a
// NetLog and its TLS secrets (KeylogFile, --ssl-key-log-file), whose
// client randoms join the capture's flows to the case.
func chromiumSetup(l *Lab, c Case, dir string) ([]string, []string, error) {
	return chromiumDNSSetup("secure")(l, c, dir)
}

// chromiumDNSSetup is chromiumSetup with the secure DNS mode mode:
// "secure" (DoH only) or "automatic" (DoH, and the system resolver when
// DoH fails).
func chromiumDNSSetup(mode string) func(l *Lab, c Case, dir string) ([]string, []string, error) {
	return func(l *Lab, c Case, dir string) ([]string, []string, error) {
		return chromiumSetupMode(l, c, dir, mode)
	}
}

func chromiumSetupMode(l *Lab, c Case, dir, mode string) ([]string, []string, error) {
	home := filepath.Join(dir, "home")
	if err := trustCA(filepath.Join(home, ".pki", "nssdb"), l.CAFile); err != nil {
		return nil, nil, err
	}
	profile := filepath.Join(dir, "profile")
	if err := os.MkdirAll(profile, 0o700); err != nil {
		return nil, nil, fmt.Errorf("interop: %w", err)
	}
	state := map[string]any{
		"dns_over_https": map[string]any{"mode": mode, "templates": l.DoHURL},
		"ssl":            map[string]any{"ech_enabled": true},
	}
	b, _ := json.MarshalIndent(state, "", "  ")
	if err := os.WriteFile(filepath.Join(profile, "Local State"), b, 0o600); err != nil {
		return nil, nil, fmt.Errorf("interop: %w", err)
	}
	keylog, err := createKeylog(dir)
	if err != nil {
		return nil, nil, err
	}
	args := append([]string(nil), chromiumFlags...)
	if c.Name == "h3" {
		// Chromium refuses QUIC to a server whose certificate chains to a
		// root that is not publicly trusted (the lab CA), unless the
		// origin is listed here; the ECH config still comes from DNS.
		args = append(args, fmt.Sprintf("--origin-to-force-quic-on=%s:%d", c.Host, l.Port))
	}
	page := l.URL(c.Host)
	if mode == "automatic" {
		if l.after == nil {
			return nil, nil, errors.New("interop: secure DNS mode automatic needs the lab's /after page")
		}
		page = l.after.url(chromiumProbeWait, page)
	}
	args = append(args, "--user-data-dir="+profile, "--log-net-log="+filepath.Join(dir, "netlog.json"),
		"--ssl-key-log-file="+keylog,
		"--dump-dom", page)
	return args, []string{"HOME=" + home}, nil
}

// chromiumProbeWait is how long Chromium in secure DNS mode automatic
// waits on a blank page before it loads the case's: it sends lookups to
// a DoH server only once that server has answered its probe, and its
// first probe goes out 5 s after it starts (probe.zone). Loaded at once,
// the page would be resolved over Do53 alone, as by a browser that has
// just started; the grid's row is a browser that has been running.
const chromiumProbeWait = 8 * time.Second
