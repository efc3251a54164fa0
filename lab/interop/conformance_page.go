package interop

import (
	"fmt"
	"os"
	"time"
)

// PageLoad is one page load by a browser in the namespace for a harness
// that runs its own servers and resolver (lab/conformance): the browser
// gets a fresh profile in Dir that trusts CAFile and loads
// https://secret.lab.test:PORT/cdn-cgi/trace.
type PageLoad struct {
	Browser string // "chromium" or "firefox"
	Dir     string // the run folder (created; profile, logs, NetLog or MOZ_LOG)
	CAFile  string // the CA the server's and the DoH resolver's certificates chain to (PEM)
	Port    int    // the page's port
	// DoHURL is the DoH resolver (Chromium secure DNS mode secure,
	// Firefox TRR mode 3); "" means the system resolver only (Chromium
	// secure DNS off, Firefox TRR mode 5), which the caller points at its
	// Do53 with UseResolvConf.
	DoHURL  string
	Timeout time.Duration // bound of the browser process; 0 means 20 s
}

// PageOutcome is what the browser did.
type PageOutcome struct {
	Loaded   bool          `json:"loaded"`    // the page loaded (Chromium's DOM, Firefox's screenshot)
	TimedOut bool          `json:"timed_out"` // the run hit its bound
	Error    string        `json:"error"`     // the browser's own error (browserError) when the page did not load
	Duration time.Duration `json:"duration"`  // the browser process, start to exit
}

// LoadPage runs the browser once on the page and reads its outcome and
// error. Chromium waits at least 2 s for the HTTPS answer after the A
// answer over Do53 as over DoH (chromiumFlags). It must run in
// the namespace Reexec made (Isolated).
func LoadPage(p PageLoad) (PageOutcome, error) {
	if err := Isolated(); err != nil {
		return PageOutcome{}, err
	}
	if p.Timeout <= 0 {
		p.Timeout = 20 * time.Second
	}
	var setup func(l *Lab, c Case, dir string) ([]string, []string, error)
	switch {
	case p.Browser == "chromium" && p.DoHURL != "":
		setup = chromiumDNSSetup("secure")
	case p.Browser == "chromium":
		setup = chromiumDNSSetup("off")
	case p.Browser == "firefox" && p.DoHURL != "":
		setup = firefoxTRRSetup(3)
	case p.Browser == "firefox":
		setup = firefoxTRRSetup(5)
	default:
		return PageOutcome{}, fmt.Errorf("%w: unknown browser %q (known: %v)", ErrBrowser, p.Browser, BrowserNames)
	}
	if err := os.MkdirAll(p.Dir, 0o755); err != nil {
		return PageOutcome{}, fmt.Errorf("interop: %w", err)
	}
	b := browsers[p.Browser]
	l := &Lab{Dir: p.Dir, CAFile: p.CAFile, DoHURL: p.DoHURL, Port: p.Port}
	args, env, err := setup(l, Case{Name: "conformance", Host: SecretName}, p.Dir)
	if err != nil {
		return PageOutcome{}, err
	}
	o, err := b.run(p.Dir, args, env, p.Timeout)
	if err != nil {
		return PageOutcome{}, err
	}
	out := PageOutcome{TimedOut: o.TimedOut, Duration: o.Duration}
	out.Loaded, _ = pageLoaded(b, p.Dir)
	if !out.Loaded {
		out.Error = browserError(p.Browser, p.Dir)
		if out.Error == "" && out.TimedOut {
			out.Error = "timeout"
		}
	}
	return out, nil
}
