package interop

// DNS modes of a grid row.
const (
	// DNSSecure: DoH only (Chromium's secure mode, Firefox's TRR mode 3);
	// the system resolver is never asked.
	DNSSecure = "doh"
	// DNSAutomatic: DoH first, and the system resolver (Do53, through
	// the adversary) when DoH fails (Chromium's automatic mode, Firefox's
	// TRR mode 2).
	DNSAutomatic = "doh+do53"
)

// GridRow is one browser configuration of the browser grid.
type GridRow struct {
	Name    string `json:"name"`    // "chromium/doh", …
	Browser string `json:"browser"` // a key of browsers
	DNS     string `json:"dns"`     // DNSSecure or DNSAutomatic
	What    string `json:"what"`    // the settings, for the report
	// setup prepares the profile (see Browser.setup).
	setup func(l *Lab, c Case, dir string) (args, env []string, err error)
}

// GridRows are the browser grid's rows, in run order.
var GridRows = []GridRow{
	{Name: "chromium/doh", Browser: "chromium", DNS: DNSSecure, What: "secure DNS mode secure (DoH only)",
		setup: chromiumDNSSetup("secure")},
	{Name: "chromium/auto", Browser: "chromium", DNS: DNSAutomatic,
		What: "secure DNS mode automatic (DoH, else the system resolver)", setup: chromiumDNSSetup("automatic")},
	{Name: "firefox/doh", Browser: "firefox", DNS: DNSSecure, What: "network.trr.mode 3 (DoH only)",
		setup: firefoxTRRSetup(3)},
	{Name: "firefox/trr2", Browser: "firefox", DNS: DNSAutomatic,
		What: "network.trr.mode 2 (DoH first, native resolver fallback)", setup: firefoxTRRSetup(2)},
}

// GridRowNames returns the names of GridRows.
func GridRowNames() []string {
	var out []string
	for _, r := range GridRows {
		out = append(out, r.Name)
	}
	return out
}

// browser is the row's browser with the row's profile setup.
func (r GridRow) browser() Browser {
	b := browsers[r.Browser]
	b.setup = r.setup
	return b
}
