package interop

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/echlab/echlab/internal/pki"
)

// TestChromiumHTTPSWait: every Chromium command line the lab builds (secure
// DNS mode secure, as in the grid's DoH rows and conformance pages with a
// DoH URL; automatic, the grid's chromium/auto row; off, conformance pages
// over Do53) has one --enable-features switch, and it makes Chromium wait
// at least 2 s for the HTTPS answer over Do53 as well as over DoH.
// Without the Do53 part, Chromium's oversized-list-do53 conformance cell
// came out GREASE in 2 of 9 runs (the HTTPS query was abandoned 6 ms
// after the A answer), and chromium/auto rows that fall back to the
// system resolver had the same race.
func TestChromiumHTTPSWait(t *testing.T) {
	dir := t.TempDir()
	ca, err := pki.LoadOrCreate(filepath.Join(dir, "pki"))
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(caFile, ca.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	l := &Lab{Dir: dir, CAFile: caFile, DoHURL: "https://127.0.0.1:8443/dns-query", Port: 443}
	if l.after, err = startAfterServer(); err != nil {
		t.Fatal(err)
	}
	defer l.after.close()
	for _, mode := range []string{"secure", "automatic", "off"} {
		args, _, err := chromiumSetupMode(l, Case{Name: "ech", Host: SecretName}, filepath.Join(dir, mode), mode)
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		var features []string
		for _, a := range args {
			if v, ok := strings.CutPrefix(a, "--enable-features="); ok {
				features = append(features, v)
			}
		}
		if len(features) != 1 {
			t.Fatalf("%s: %d --enable-features switches, want 1: %q", mode, len(features), args)
		}
		feature, params, _ := strings.Cut(features[0], ":")
		if feature != "UseDnsHttpsSvcb" {
			t.Fatalf("%s: feature %q, want UseDnsHttpsSvcb only", mode, feature)
		}
		p := strings.Split(params, "/")
		set := map[string]string{}
		for i := 0; i+1 < len(p); i += 2 {
			set[p[i]] = p[i+1]
		}
		for _, dns := range []string{"Secure", "Insecure"} {
			if v := set["UseDnsHttpsSvcb"+dns+"ExtraTimeMin"]; v != "2s" {
				t.Errorf("%s: %s extra time min %q, want 2s (params %q)", mode, dns, v, params)
			}
		}
		if len(p)%2 != 0 || len(set) != 4 {
			t.Errorf("%s: params %q: want 4 name/value pairs", mode, params)
		}
	}
}
