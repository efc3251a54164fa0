package interop

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// firefoxPrefs are the user.js prefs of every Firefox run, besides the DoH
// URL: DNS only through the lab's DoH (TRR mode 3), ECH from HTTPS records
// over TCP and QUIC, GREASE ECH always, and no background traffic.
var firefoxPrefs = map[string]any{
	"network.trr.mode":                    3,
	"network.trr.bootstrapAddr":           "127.0.0.1",
	"network.trr.allow-rfc1918":           true,
	"network.trr.confirmationNS":          "skip",
	"network.trr.excluded-domains":        "",
	"network.dns.echconfig.enabled":       true,
	"network.dns.http3_echconfig.enabled": true,
	"network.dns.upgrade_with_https_rr":   true,
	"network.dns.use_https_rr_as_altsvc":  true,
	"network.http.http3.enable":           true,
	// Firefox drops HTTP/3 when the certificate chains to a root that is
	// not built in (the lab CA): "Authenticated hasThirdPartyRoots=1" and
	// an immediate close in the nsHttp log.
	"network.http.http3.disable_when_third_party_roots_found": false,
	"security.tls.ech.grease_probability":                     100,
	"network.proxy.type":                                      0,
	"network.captive-portal-service.enabled":                  false,
	"network.connectivity-service.enabled":                    false,
	"network.http.speculative-parallel-limit":                 0,
	"network.dns.disablePrefetch":                             true,
	"browser.shell.checkDefaultBrowser":                       false,
	"browser.startup.homepage_override.mstone":                "ignore",
	"browser.aboutwelcome.enabled":                            false,
	"datareporting.policy.dataSubmissionEnabled":              false,
	"datareporting.healthreport.uploadEnabled":                false,
	"toolkit.telemetry.enabled":                               false,
	"toolkit.telemetry.reportingpolicy.firstRun":              false,
	"app.update.enabled":                                      false,
	"app.normandy.enabled":                                    false,
	"extensions.update.enabled":                               false,
	"extensions.getAddons.cache.enabled":                      false,
	"browser.safebrowsing.malware.enabled":                    false,
	"browser.safebrowsing.phishing.enabled":                   false,
	"browser.safebrowsing.downloads.enabled":                  false,
	"browser.newtabpage.enabled":                              false,
	"browser.region.network.url":                              "",
	"services.settings.server":                                "https://127.0.0.1:1/",
}

// KeylogFile is the SSLKEYLOGFILE (RFC 9850) each browser writes in its
// run folder (Firefox's SSLKEYLOGFILE, Chromium's --ssl-key-log-file),
// created empty with mode 0600 before the run: its client randoms join
// the capture's flows to the case. NSS (as bundled with Firefox ESR) logs
// ECH_SECRET and ECH_CONFIG there too.
const KeylogFile = "sslkeylog.txt"

// firefoxSetup makes a fresh profile with cert9.db trusting the lab CA and
// a user.js, and a fresh HOME. The run takes a screenshot of the page
// (bounded by timeout(1): headless --screenshot waits forever for a page
// that never loads).
func firefoxSetup(l *Lab, c Case, dir string) ([]string, []string, error) {
	return firefoxSetupMode(l, c, dir, 3, "TRR:4,nsHostResolver:4,nsHttp:3")
}

// firefoxTRRSetup is firefoxSetup with network.trr.mode mode: 3 (DoH
// only) or 2 (DoH first, the system resolver when it fails), and nsHttp
// logged at level 4, where the transactions' close reasons are.
func firefoxTRRSetup(mode int) func(l *Lab, c Case, dir string) ([]string, []string, error) {
	return func(l *Lab, c Case, dir string) ([]string, []string, error) {
		return firefoxSetupMode(l, c, dir, mode, "TRR:4,nsHostResolver:4,nsHttp:4")
	}
}

func firefoxSetupMode(l *Lab, c Case, dir string, mode int, mozLog string) ([]string, []string, error) {
	profile := filepath.Join(dir, "profile")
	if err := trustCA(profile, l.CAFile); err != nil {
		return nil, nil, err
	}
	var b strings.Builder
	prefs := map[string]any{"network.trr.uri": l.DoHURL, "network.trr.custom_uri": l.DoHURL}
	for k, v := range firefoxPrefs {
		prefs[k] = v
	}
	prefs["network.trr.mode"] = mode
	for k, v := range prefs {
		if s, ok := v.(string); ok {
			v = fmt.Sprintf("%q", s)
		}
		fmt.Fprintf(&b, "user_pref(%q, %v);\n", k, v)
	}
	if err := os.WriteFile(filepath.Join(profile, "user.js"), []byte(b.String()), 0o600); err != nil {
		return nil, nil, fmt.Errorf("interop: %w", err)
	}
	home := filepath.Join(dir, "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, nil, fmt.Errorf("interop: %w", err)
	}
	keylog, err := createKeylog(dir)
	if err != nil {
		return nil, nil, err
	}
	args := []string{"--headless", "--no-remote", "--profile", profile,
		"--screenshot", filepath.Join(dir, "screenshot.png"), l.URL(c.Host)}
	if v := os.Getenv("ECHLAB_INTEROP_MOZ_LOG"); v != "" {
		mozLog = v
	}
	env := []string{"HOME=" + home, "MOZ_LOG=" + mozLog,
		"MOZ_LOG_FILE=" + filepath.Join(dir, "moz.log"), "MOZ_CRASHREPORTER_DISABLE=1",
		"SSLKEYLOGFILE=" + keylog}
	return args, env, nil
}
