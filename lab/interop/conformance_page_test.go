package interop

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// TestInsecureHTTPSWait: a conformance page load's Chromium command line
// has one --enable-features switch, and it makes Chromium wait at least
// 2 s for the HTTPS answer over Do53 as well as over DoH (without the
// Do53 part, Chromium's oversized-list-do53 cell came out GREASE in 2 of
// 9 runs: the HTTPS query was abandoned 6 ms after the A answer); a
// command line without that switch, or with two, is an error.
func TestInsecureHTTPSWait(t *testing.T) {
	l := &Lab{Port: 443}
	args := append(append([]string(nil), chromiumFlags...), "--user-data-dir=/p", "--dump-dom", l.URL(SecretName))
	svcb := ""
	for _, a := range chromiumFlags {
		if strings.HasPrefix(a, httpsSvcbFeature) {
			svcb = a
		}
	}
	got, err := withInsecureHTTPSWait(args)
	if err != nil {
		t.Fatal(err)
	}
	var features []string
	for _, a := range got {
		if v, ok := strings.CutPrefix(a, "--enable-features="); ok {
			features = append(features, v)
		}
	}
	if len(features) != 1 {
		t.Fatalf("%d --enable-features switches, want 1: %q", len(features), got)
	}
	feature, params, _ := strings.Cut(features[0], ":")
	if feature != "UseDnsHttpsSvcb" {
		t.Fatalf("feature %q, want UseDnsHttpsSvcb only", feature)
	}
	p := strings.Split(params, "/")
	set := map[string]string{}
	for i := 0; i+1 < len(p); i += 2 {
		set[p[i]] = p[i+1]
	}
	for _, mode := range []string{"Secure", "Insecure"} {
		if v := set["UseDnsHttpsSvcb"+mode+"ExtraTimeMin"]; v != "2s" {
			t.Errorf("%s extra time min %q, want 2s (params %q)", mode, v, params)
		}
	}
	if len(p)%2 != 0 || len(set) != 4 {
		t.Errorf("params %q: want 4 name/value pairs", params)
	}
	if !slices.Equal(got[len(got)-3:], args[len(args)-3:]) || len(got) != len(args) {
		t.Errorf("the other arguments changed: %q", got)
	}
	for _, bad := range [][]string{{"--headless"}, {svcb, "--enable-features=Other"}} {
		if _, err := withInsecureHTTPSWait(bad); !errors.Is(err, ErrBrowser) {
			t.Errorf("%q: err %v, want ErrBrowser", bad, err)
		}
	}
}
