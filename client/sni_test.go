package client

import "testing"

// TestSNIOverride fetches a URL whose host is an IP literal with
// ServerName set: the name in the (inner) SNI, the certificate checked and
// the name the server saw are ServerName, with ECH and without.
func TestSNIOverride(t *testing.T) {
	l := newLab(t)
	key, list := newKey(t, 3)
	port := startTLS(t, l.serverTLS(echKeys(key)))
	url := "https://127.0.0.1:" + itoa(port) + "/"

	o := Options{ConfigList: list, RootCAs: l.ca.Pool(), ServerName: "secret.lab.test"}
	r := mustFetch(t, url, o)
	if r.ECH != ECHAccepted || r.InnerSNI != "secret.lab.test" || r.OuterSNI != "public.lab.test" {
		t.Errorf("ECH with SNI override: ech=%s inner=%q outer=%q", r.ECH, r.InnerSNI, r.OuterSNI)
	}
	wantSaw(t, r, "secret.lab.test", true)

	o = Options{Mode: ModeBaseline, RootCAs: l.ca.Pool(), ServerName: "secret.lab.test"}
	r = mustFetch(t, url, o)
	if r.ECH != ECHNone || r.OuterSNI != "secret.lab.test" {
		t.Errorf("baseline with SNI override: ech=%s outer=%q", r.ECH, r.OuterSNI)
	}
	wantSaw(t, r, "secret.lab.test", false)

	// The override is also the name the certificate must carry.
	o.ServerName = "elsewhere.example"
	r, err := Fetch(ctxT(t), url, o)
	wantClass(t, r, err, ClassCertificate)
}
