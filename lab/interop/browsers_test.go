package interop

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/echlab/echlab/lab/observe"
)

// TestBrowsers runs the whole browser suite: as root with
// ECHLAB_INTEROP=1, or under CI=true as root. It installs the Debian
// packages if missing, then re-runs itself in a fresh network namespace
// (only loopback) where the lab and the browsers run. The output stays in
// $ECHLAB_INTEROP_OUT (default: a fresh directory under /tmp, logged).
func TestBrowsers(t *testing.T) {
	if InNetns() {
		browsersInNetns(t)
		return
	}
	needBrowserSuite(t)
	if os.Getenv("ECHLAB_INTEROP_OUT") == "" {
		dir, err := os.MkdirTemp("", "echlab-interop-")
		if err != nil {
			t.Fatal(err)
		}
		t.Setenv("ECHLAB_INTEROP_OUT", dir)
	}
	t.Logf("output in %s", os.Getenv("ECHLAB_INTEROP_OUT"))
	if err := Reexec([]string{"-test.run=^TestBrowsers$", "-test.v", "-test.timeout=9m"}); err != nil {
		t.Fatal(err)
	}
}

// needBrowserSuite skips (or, under CI=true, fails) unless the browser
// suite can run: ECHLAB_INTEROP=1 or CI=true, and root; it installs the
// browsers if missing.
func needBrowserSuite(t *testing.T) {
	t.Helper()
	ci := os.Getenv("CI") == "true"
	if os.Getenv("ECHLAB_INTEROP") == "" && !ci {
		t.Skip("set ECHLAB_INTEROP=1 (as root) to run real browsers")
	}
	if os.Geteuid() != 0 {
		if ci {
			t.Fatal("the browser suite needs root for its network namespace")
		}
		t.Skip("the browser suite needs root for its network namespace")
	}
	installBrowsers(t)
}

// installBrowsers installs the browsers and certutil with apt-get when
// any is missing (outside the namespace: it needs the network).
func installBrowsers(t *testing.T) {
	for _, p := range []string{"chromium", "firefox-esr", "certutil", "ethtool"} {
		if _, err := exec.LookPath(p); err == nil {
			continue
		}
		t.Logf("%s missing: apt-get install -y chromium firefox-esr libnss3-tools ethtool", p)
		cmd := exec.Command("apt-get", "install", "-y", "chromium", "firefox-esr", "libnss3-tools", "ethtool")
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("apt-get install: %v\n%s", err, out)
		}
		return
	}
}

// browsersInNetns is the part of TestBrowsers that runs in the namespace.
func browsersInNetns(t *testing.T) {
	if err := Isolate(); err != nil {
		t.Fatal(err)
	}
	var progress strings.Builder
	rep, err := Run(Config{Dir: os.Getenv("ECHLAB_INTEROP_OUT"), Timeout: 45 * time.Second, Progress: &progress})
	t.Log(progress.String())
	if rep != nil {
		var table strings.Builder
		rep.Table(&table) //nolint:errcheck // strings.Builder
		t.Log("\n" + table.String())
	}
	if errors.Is(err, ErrCaseFailed) {
		for _, f := range rep.Failed() {
			t.Errorf("%s %s: %s", f.Browser, f.Case, f.Why)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	checkFirefoxKeylog(t, rep)
	checkJoinedByRandom(t, rep, os.Getenv("ECHLAB_INTEROP_OUT"))
}

// checkJoinedByRandom: every flow of the capture, to the server (TCP and
// QUIC) and to the DoH port, whose ClientHello random is in a browser's
// SSLKEYLOGFILE was joined to its browser and case by that random. The
// browsers do not log every connection (Chromium logs no secrets for some
// of its DoH connections, and no browser for handshakes dropped before the
// ServerHello): those may fall back to a client port or time window, are
// named in the log, and must be few.
func checkJoinedByRandom(t *testing.T, rep *Report, dir string) {
	logged := map[string]bool{}
	keylogs, _ := filepath.Glob(filepath.Join(dir, "*", "sslkeylog.txt"))
	for _, name := range keylogs {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 3 {
				logged[strings.ToLower(f[1])] = true
			}
		}
	}
	if len(logged) == 0 {
		t.Fatalf("no browser keylog under %s", dir)
	}
	b, err := os.ReadFile(filepath.Join(dir, FlowsJSON))
	if err != nil {
		t.Fatal(err)
	}
	n, unlogged := 0, 0
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var f observe.Flow
		if err := json.Unmarshal([]byte(line), &f); err != nil {
			t.Fatalf("%s: %v", FlowsJSON, err)
		}
		n++
		switch {
		case f.ScenarioBy == observe.JoinClientRandom:
		case !logged[f.ClientRandom]:
			unlogged++
			t.Logf("flow %d (%s %v → %v): its random %q is in no keylog; joined to %q by %q",
				f.ID, f.Transport, f.Client, f.Server, f.ClientRandom, f.Scenario, f.ScenarioBy)
		default:
			t.Errorf("flow %d (%s %v → %v): its random is logged, yet it was joined to %q by %q, want by %s",
				f.ID, f.Transport, f.Client, f.Server, f.Scenario, f.ScenarioBy, observe.JoinClientRandom)
		}
	}
	if n < len(rep.Results) {
		t.Errorf("%s holds %d flows for %d results", FlowsJSON, n, len(rep.Results))
	}
	if unlogged > n/4 {
		t.Errorf("%d of %d flows have a random no browser logged", unlogged, n)
	}
}

// checkFirefoxKeylog: Firefox ESR's own SSLKEYLOGFILE holds ECH_SECRET and
// ECH_CONFIG, and compare opens its ECH flows from it alone: over TCP
// (ech) and QUIC (h3), and both connections of retry.
func checkFirefoxKeylog(t *testing.T, rep *Report) {
	want := map[string]int{"ech": 1, "h3": 1, "retry": 2}
	for _, r := range rep.Results {
		n, ok := want[r.Case]
		if r.Browser != "firefox" || !ok {
			continue
		}
		if r.Observed == nil || r.Observed.KeylogECH < n || r.Observed.KeylogOpened < n {
			t.Errorf("firefox %s: its SSLKEYLOGFILE opened %+v ECH flows, want %d", r.Case, r.Observed, n)
		}
	}
}
