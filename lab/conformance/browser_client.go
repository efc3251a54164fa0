package conformance

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/echlab/echlab/client"
	"github.com/echlab/echlab/lab/interop"
)

// The browser clients: run by lab/interop's LoadPage in its loopback-only
// network namespace (as root), so only in a process that runs there (see
// interop.Reexec).
const (
	// ClientChromium is headless Chromium with ECH on and secure DNS mode
	// secure through the case's DoH resolver (off, with the system
	// resolver pointed at the case's Do53, for Do53 cases).
	ClientChromium Client = "chromium"
	// ClientFirefox is headless Firefox ESR with ECH and GREASE on and
	// TRR mode 3 through the case's DoH resolver (mode 5, the system
	// resolver, for Do53 cases).
	ClientFirefox Client = "firefox"
)

// BrowserClients lists the browser clients, in table order.
func BrowserClients() []Client { return []Client{ClientChromium, ClientFirefox} }

// KnownClients lists every client: Clients() then BrowserClients().
func KnownClients() []Client { return append(Clients(), BrowserClients()...) }

// IsBrowser says whether c runs in the browser harness.
func (c Client) IsBrowser() bool { return c == ClientChromium || c == ClientFirefox }

// browserGrace is what a browser cell may take beyond its page-load bound
// (Options.CellTimeout): timeout(1)'s kill grace and the profile setup.
const browserGrace = 30 * time.Second

// resolvConfOnce points the namespace's system resolver at the Do53 front
// (127.0.0.1:53) once per process.
var (
	resolvConfOnce sync.Once
	errResolvConf  error
)

// runBrowser loads https://secret.lab.test:PORT/ in the browser and fills
// ev from what it reported: the page loaded or not, and its own error
// (Chromium's NetLog net error, Firefox's MOZ_LOG nsresult). Whether ECH
// was accepted is read from the relay's hellos: the page can only load if
// the server took the inner hello (only it names secret.lab.test), so a
// loaded page whose last hello is a real offer was accepted; a different
// config id in a later offer than in the first is a retry.
func runBrowser(_ context.Context, c Client, t target, ev *Evidence) {
	if t.browserDir == "" {
		ev.Error, ev.ErrorClass = "conformance: no browser folder", string(client.ClassConfig)
		return
	}
	if err := os.MkdirAll(t.browserDir, 0o755); err != nil {
		ev.Error, ev.ErrorClass = err.Error(), string(client.ClassConfig)
		return
	}
	dir, err := os.MkdirTemp(t.browserDir, string(c)+"-")
	if err != nil {
		ev.Error, ev.ErrorClass = err.Error(), string(client.ClassConfig)
		return
	}
	p := interop.PageLoad{Browser: string(c), Dir: dir, CAFile: t.caFile, Port: t.port, Timeout: t.browserTimeout}
	if t.do53 != "" {
		front, err := startDo53(dir, t.do53)
		if err != nil {
			ev.Error, ev.ErrorClass = err.Error(), string(client.ClassConfig)
			return
		}
		defer front.Close()
	} else {
		p.DoHURL = t.dnsURL
	}
	o, err := interop.LoadPage(p)
	if err != nil {
		ev.Error, ev.ErrorClass = err.Error(), string(client.ClassConfig)
		return
	}
	ev.Browser = &BrowserRun{PageOutcome: o}
	if !o.Loaded {
		ev.Error, ev.ErrorClass = o.Error, "browser"
		if ev.Error == "" {
			ev.Error = "the page did not load (the browser logged no error)"
		}
	}
}

// BrowserRun is what a browser client's run did.
type BrowserRun struct {
	interop.PageOutcome
	// Parallel are the hellos of the browser's further connection
	// attempts: each starts with the same hello as the first attempt
	// (Chromium preconnects twice for the page, and its navigation opens
	// a third attempt when both failed), with that attempt's one
	// follow-up hello (the retry, or the connection without ECH). They
	// are removed from Evidence.Hellos, which is the first attempt and
	// every hello no attempt accounts for (see attempts).
	Parallel []Hello `json:"parallel_hellos,omitempty"`
}

// browserReport fills what the browser "reported" about ECH from the
// hellos the relay logged (see runBrowser); called once the hellos are in.
func (e *Evidence) browserReport() {
	if e.Browser == nil {
		return
	}
	e.Hellos, e.Browser.Parallel = attempts(e.Hellos)
	if !e.Browser.Loaded || len(e.Hellos) == 0 {
		return
	}
	first := firstOffer(e.Hellos)
	last := e.Hellos[len(e.Hellos)-1]
	if first == nil || last.ECH != "real" {
		return
	}
	e.ECHAccepted = true
	e.ConfigID = first.ConfigID
	e.Retried = *last.ConfigID != *first.ConfigID
}

// attempts splits a browser's hellos, in the order the relay logged them,
// into its first connection attempt (first) and its further attempts
// (parallel). A real ECH offer equal to the first hello (sameHello) opens
// a further attempt; any other hello follows up the oldest attempt that
// has none yet (a connection follows up only after its attempt's first
// hello was answered, so an attempt's first hello is always logged before
// its follow-up, though the attempts interleave: Chromium's two
// preconnects and its navigation each send id 1 and then one retry, seen
// as 1 1 3 3 1 3 or 1 3 1 3 1 3). A hello left over when every attempt
// has its follow-up is a second follow-up, which only a client that
// retries again sends (Firefox following retry configs in a loop: 1 3 3 3
// …): it stays with the first attempt, where the grade counts it.
func attempts(hs []Hello) (first, parallel []Hello) {
	if len(hs) == 0 || hs[0].ECH != "real" {
		return hs, nil
	}
	type attempt struct {
		hellos   []Hello
		followed bool
	}
	as := []*attempt{{hellos: hs[:1:1]}}
	for _, h := range hs[1:] {
		if h.ECH == "real" && sameHello(hs[0], h) {
			as = append(as, &attempt{hellos: []Hello{h}})
			continue
		}
		to := as[0]
		for _, a := range as {
			if !a.followed {
				to = a
				break
			}
		}
		to.hellos, to.followed = append(to.hellos, h), true
	}
	for _, a := range as[1:] {
		parallel = append(parallel, a.hellos...)
	}
	return as[0].hellos, parallel
}

// sameHello says whether two real ECH offers are the same attempt: the
// same cleartext SNI and config id. (GREASE offers draw a fresh random id
// each, so they never match.)
func sameHello(a, b Hello) bool {
	return a.ECH == b.ECH && a.SNI == b.SNI && a.ConfigID != nil && b.ConfigID != nil && *a.ConfigID == *b.ConfigID
}

// startDo53 points the system resolver at a Do53 front on 127.0.0.1:53
// that forwards to the case's resolver (UDP and TCP on one address).
func startDo53(dir, addr string) (*interop.Do53Front, error) {
	resolvConfOnce.Do(func() {
		errResolvConf = interop.UseResolvConf(filepath.Dir(dir), "127.0.0.1")
	})
	if errResolvConf != nil {
		return nil, errResolvConf
	}
	f, err := interop.StartDo53Front(interop.Do53FrontAddr, addr, addr)
	if err != nil {
		return nil, fmt.Errorf("conformance: %w", err)
	}
	return f, nil
}
