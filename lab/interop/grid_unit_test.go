package interop

import (
	"errors"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/echlab/echlab/lab/adversary"
	"github.com/echlab/echlab/lab/capture"
	"github.com/echlab/echlab/server"
)

// TestExpectedCell checks the RFC 9849 expectation of each default column
// for a secure-only and an automatic row.
func TestExpectedCell(t *testing.T) {
	secure, auto := GridRows[0], GridRows[1]
	if secure.DNS != DNSSecure || auto.DNS != DNSAutomatic {
		t.Fatalf("rows %+v %+v", secure, auto)
	}
	for _, tc := range []struct {
		col            string
		secure, auto   []string
		secWhy, autoWh string
	}{
		{"none", []string{GridECH}, []string{GridECH}, "§6.1", "§6.1"},
		{"block-ech rst", []string{GridFailed}, []string{GridFailed}, "§8.1.1", "§8.1.1"},
		{"block-ech-public public.lab.test rst", []string{GridFailed}, []string{GridFailed}, "§8.1.1", "§8.1.1"},
		{"block-sni public.lab.test", []string{GridFailed}, []string{GridFailed}, "§8.1.1", "§8.1.1"},
		{"strip-ech", []string{GridECH}, []string{GridECH, GridGREASE}, "§6.1", "§10.2"},
		{"block-doh", []string{GridFailed}, []string{GridECH, GridGREASE, GridClear}, "secure-only", "§6.2"},
		{"strip-ech+block-doh", []string{GridFailed}, []string{GridGREASE, GridClear}, "secure-only", "§10.2"},
		{"block-ech rst+block-doh", []string{GridFailed}, []string{GridFailed}, "§8.1.1", "§8.1.1"},
		{"poison public.lab.test 127.0.0.66", nil, nil, "not modelled", "not modelled"},
	} {
		col, err := adversary.Parse(tc.col)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range []struct {
			row  GridRow
			want []string
			why  string
		}{{secure, tc.secure, tc.secWhy}, {auto, tc.auto, tc.autoWh}} {
			got, why := expectedCell(r.row, col)
			if !slices.Equal(got, r.want) || !strings.Contains(why, r.why) {
				t.Errorf("%s × %s: %q (%s), want %q with %q", r.row.Name, tc.col, got, why, r.want, r.why)
			}
		}
	}
}

// TestClassifyCell judges cells from server records as the grid does:
// ECH accepted with the page, the true name in a completed GREASE or
// plain handshake, and a failure whose error comes from the browser.
func TestClassifyCell(t *testing.T) {
	id := uint8(7)
	l := &Lab{CurrentID: id}
	c := Cases[0]
	acc := server.ConnRecord{ECH: server.ECHAccepted, OuterSNI: PublicName, InnerSNI: SecretName, Transport: "tcp", ALPN: "h2", ConfigID: &id}
	grease := server.ConnRecord{ECH: server.ECHGrease, OuterSNI: SecretName, Transport: "tcp", ALPN: "h2", ConfigID: &id}
	plain := server.ConnRecord{ECH: server.ECHNone, OuterSNI: SecretName, Transport: "tcp", ALPN: "h2"}
	// GREASE whose random config id is one the server held: logged
	// rejected, yet the outer SNI is the true name (seen with Firefox).
	held := server.ConnRecord{ECH: server.ECHRejected, OuterSNI: SecretName, Transport: "tcp", ALPN: "h2", ConfigID: &id}
	for _, tc := range []struct {
		name   string
		recs   []server.ConnRecord
		loaded bool
		want   string
	}{
		{"accepted", []server.ConnRecord{acc}, true, GridECH},
		{"accepted, no page", []server.ConnRecord{acc}, false, GridFailed},
		{"grease", []server.ConnRecord{grease}, true, GridGREASE},
		{"grease with a held config id", []server.ConnRecord{held}, true, GridGREASE},
		{"plain", []server.ConnRecord{plain}, true, GridClear},
		{"nothing", nil, false, GridFailed},
	} {
		cell := GridCell{Row: "chromium/doh", Connections: tc.recs, PageLoaded: tc.loaded}
		l.classify(&cell, c, t.TempDir())
		if cell.Outcome != tc.want {
			t.Errorf("%s: %s (%+v), want %s", tc.name, cell.Outcome, cell, tc.want)
		}
	}
	cell := GridCell{Row: "firefox/doh", TimedOut: true}
	l.classify(&cell, c, t.TempDir())
	if cell.Outcome != GridFailed || cell.Error != "timeout" {
		t.Errorf("timed out without a log: %+v", cell)
	}
}

// TestLeaksAndReached: the true name counts as leaked on the SNI and on a
// Do53 query for it or a name under it (the HTTPS record's
// _PORT._https.NAME), not for the public name; only passed ClientHellos
// to the server count as reaching it.
func TestLeaksAndReached(t *testing.T) {
	f := capture.Flow{Role: RoleServer, Proto: "tcp", Client: netip.MustParseAddrPort("127.0.0.1:5")}
	seen := []adversary.Sighting{{Flow: f, Kind: adversary.SawSNI, Name: PublicName},
		{Kind: adversary.SawDNSQuery, Name: "_443._https." + SecretName}}
	if got := leaks(seen, SecretName); !slices.Equal(got, []string{LeakDNS}) {
		t.Errorf("leaks = %q", got)
	}
	seen = append(seen, adversary.Sighting{Flow: f, Kind: adversary.SawSNI, Name: SecretName})
	if got := leaks(seen, SecretName); !slices.Equal(got, []string{LeakDNS, LeakSNI}) {
		t.Errorf("leaks = %q", got)
	}
	ds := []adversary.Decision{{Flow: f, Action: "pass"}, {Flow: f, Action: "rst"}, {Flow: f, Action: "rst-after-reply"},
		{Flow: capture.Flow{Role: RoleDoH, Proto: "tcp"}, Action: "pass"}}
	if n := reachedServer(ds); n != 2 {
		t.Errorf("reachedServer = %d, want 2", n)
	}
}

// TestUseResolvConfOutsideNetns: outside the namespace Reexec made,
// UseResolvConf refuses before touching anything.
func TestUseResolvConfOutsideNetns(t *testing.T) {
	if InNetns() {
		t.Skip("in the namespace")
	}
	before, _ := os.ReadFile("/etc/resolv.conf")
	dir := t.TempDir()
	if err := UseResolvConf(dir, "127.0.0.1"); !errors.Is(err, ErrNotIsolated) && !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("UseResolvConf = %v", err)
	}
	after, _ := os.ReadFile("/etc/resolv.conf")
	if string(before) != string(after) {
		t.Fatal("/etc/resolv.conf changed")
	}
	if _, err := os.Stat(dir + "/resolv.conf"); err == nil {
		t.Error("wrote a resolv.conf outside the namespace")
	}
}

// TestGridConfigColumns: the control column comes first, once; a bad
// spec and an unknown row are errors.
func TestGridConfigColumns(t *testing.T) {
	_, cols, rows, err := GridConfig{Columns: "block-doh,none,strip-ech"}.populate()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range cols {
		names = append(names, adversary.Join(c))
	}
	if !slices.Equal(names, []string{"none", "block-doh", "strip-ech"}) || len(rows) != len(GridRows) {
		t.Errorf("columns %q, %d rows", names, len(rows))
	}
	_, cols, _, err = GridConfig{}.populate()
	if err != nil || len(cols) != 1+len(DefaultGridColumns) {
		t.Errorf("default: %d columns, %v", len(cols), err)
	}
	if _, _, _, err := (GridConfig{Columns: "block-nothing"}).populate(); err == nil {
		t.Error("a bad policy spec was accepted")
	}
	if _, _, _, err := (GridConfig{Rows: []string{"safari/doh"}}).populate(); !errors.Is(err, ErrBrowser) {
		t.Errorf("unknown row: %v", err)
	}
}
