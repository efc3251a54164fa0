package client

import (
	"net/netip"
	"testing"
)

func TestHTTPSOwner(t *testing.T) {
	for _, c := range []struct {
		host string
		port int
		want string
	}{
		{"secret.lab.test", 443, "secret.lab.test."},
		{"secret.lab.test.", 0, "secret.lab.test."},
		{"secret.lab.test", 8443, "_8443._https.secret.lab.test."},
	} {
		if got := HTTPSOwner(c.host, c.port); got != c.want {
			t.Errorf("HTTPSOwner(%q, %d) = %q, want %q", c.host, c.port, got, c.want)
		}
	}
}

// A server on a port other than 443 is published at _PORT._https.NAME, and
// the record's TargetName is where to connect.
func TestFetchPortPrefixedOwner(t *testing.T) {
	l := newLab(t)
	key, list := newKey(t, 4)
	port := startTLS(t, l.serverTLS(echKeys(key)))
	owner := "_" + itoa(port) + "._https.secret.lab.test."
	z := newZone(t,
		echRecord(owner, "svc.lab.test.", port, list, "h2"),
		"svc.lab.test. 60 IN A 127.0.0.1",
		// Decoys: an unprefixed record with a wrong config, no A for secret.
		echRecord("secret.lab.test.", ".", 1, nil, "h2"))
	r := mustFetch(t, "https://secret.lab.test:"+itoa(port)+"/", l.opts(z.startUDP(t)))
	d := r.Discovery
	if d.Owner != owner || d.Target != "svc.lab.test." || d.Port != port || !d.Found || d.FromHints {
		t.Fatalf("discovery %+v", d)
	}
	if r.ECH != ECHAccepted || *r.ConfigID != 4 {
		t.Fatalf("ech=%s", r.ECH)
	}
	wantSaw(t, r, "secret.lab.test", true)
}

func TestFetchFollowsAliasMode(t *testing.T) {
	l := newLab(t)
	key, list := newKey(t, 6)
	port := startTLS(t, l.serverTLS(echKeys(key)))
	z := newZone(t,
		"secret.lab.test. 60 IN HTTPS 0 cdn.lab.test.",
		"cdn.lab.test. 60 IN HTTPS 0 edge.lab.test.",
		echRecord("edge.lab.test.", ".", port, list, "h2"),
		"edge.lab.test. 60 IN A 127.0.0.1")
	r := mustFetch(t, "https://secret.lab.test/", l.opts(z.startUDP(t)))
	d := r.Discovery
	if len(d.Aliases) != 2 || d.Aliases[1] != "edge.lab.test." || d.Target != "edge.lab.test." {
		t.Fatalf("discovery %+v", d)
	}
	if r.ECH != ECHAccepted || *r.ConfigID != 6 {
		t.Fatalf("ech=%s", r.ECH)
	}
	wantSaw(t, r, "secret.lab.test", true)
}

// Without A/AAAA records the ipv4hint is used; the lowest priority wins.
func TestDiscoverHintsAndPriority(t *testing.T) {
	_, list := newKey(t, 1)
	z := newZone(t,
		"secret.lab.test. 60 IN HTTPS 2 far.lab.test. port=9 ipv4hint=192.0.2.9",
		echRecord("secret.lab.test.", "near.lab.test.", 8443, list, "h2,h3")+" ipv4hint=127.0.0.2,127.0.0.3 ipv6hint=::1")
	d, err := Discover(ctxT(t), udpExchanger{z.startUDP(t)}, "secret.lab.test", 443, true)
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Addr{netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3"), netip.MustParseAddr("::1")}
	if !d.FromHints || len(d.Addrs) != 3 || d.Addrs[0] != want[0] || d.Addrs[2] != want[2] {
		t.Fatalf("addrs %v from hints %v", d.Addrs, d.FromHints)
	}
	if d.Priority != 1 || d.Port != 8443 || d.Target != "near.lab.test." || len(d.ALPN) != 2 || d.ALPN[1] != "h3" {
		t.Fatalf("discovery %+v", d)
	}
	if string(d.ConfigList) != string(list) || d.Queries != 3 {
		t.Fatalf("config list or queries (%d) wrong", d.Queries)
	}
}

// A name with no HTTPS record is no error for Discover: Found is false and
// the host is the target.
func TestDiscoverNoRecord(t *testing.T) {
	z := newZone(t, "plain.lab.test. 60 IN AAAA ::1")
	d, err := Discover(ctxT(t), udpExchanger{z.startUDP(t)}, "plain.lab.test", 443, true)
	if err != nil {
		t.Fatal(err)
	}
	if d.Found || d.ConfigList != nil || d.Target != "plain.lab.test." || len(d.Addrs) != 1 || !d.Addrs[0].Is6() {
		t.Fatalf("discovery %+v", d)
	}
}

// A ServiceMode record whose mandatory lists a key the client does not
// implement is ignored (RFC 9460 §8), with its config: the next priority
// is used. A record listing only keys the client implements is used.
func TestDiscoverSkipsIncompatibleMandatory(t *testing.T) {
	_, bad := newKey(t, 2)
	_, good := newKey(t, 1)
	z := newZone(t,
		echRecord("secret.lab.test.", "bad.lab.test.", 8443, bad, "h2")+` key65000="x" mandatory=ech,key65000`,
		"secret.lab.test. 60 IN HTTPS 2 good.lab.test. alpn=h2 ech="+b64(good)+" mandatory=ech,alpn",
		"other.lab.test. 60 IN HTTPS 1 only.lab.test. key65000=\"x\" mandatory=key65000 ech="+b64(bad))
	ex := udpExchanger{z.startUDP(t)}
	d, err := Discover(ctxT(t), ex, "secret.lab.test", 443, false)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Found || d.Priority != 2 || d.Target != "good.lab.test." || string(d.ConfigList) != string(good) {
		t.Fatalf("discovery %+v, want the priority-2 record", d)
	}
	d, err = Discover(ctxT(t), ex, "other.lab.test", 443, false)
	if err != nil {
		t.Fatal(err)
	}
	if d.Found || d.ConfigList != nil || d.Target != "other.lab.test." {
		t.Fatalf("discovery %+v, want no compatible record", d)
	}
}

// An AliasMode record next to ServiceMode records in one set wins: RFC
// 9460 §2.4.2 says the ServiceMode records are ignored.
func TestDiscoverAliasBesideServiceIgnoresService(t *testing.T) {
	_, bad := newKey(t, 2)
	_, good := newKey(t, 1)
	z := newZone(t,
		"secret.lab.test. 60 IN HTTPS 0 alias1.lab.test.",
		echRecord("secret.lab.test.", "bad.lab.test.", 8443, bad, "h2"),
		echRecord("alias1.lab.test.", "good.lab.test.", 8443, good, "h2"))
	ex := udpExchanger{z.startUDP(t)}
	d, err := Discover(ctxT(t), ex, "secret.lab.test", 443, false)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Found || d.Target != "good.lab.test." || string(d.ConfigList) != string(good) ||
		len(d.Aliases) != 1 || d.Aliases[0] != "alias1.lab.test." {
		t.Fatalf("discovery %+v, want the alias followed and the ServiceMode record beside it ignored", d)
	}
}
