package adversary

import (
	"slices"
	"strconv"
	"testing"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/lab/capture"
)

// streamCase is one ClientHello put to one column, and the verdict.
type streamCase struct {
	name  string
	spec  string
	role  capture.Role
	first []byte
	want  capture.Verdict
}

func runStreamCases(t *testing.T, cases []streamCase) {
	t.Helper()
	for _, c := range cases {
		a := mustParse(t, c.spec)
		role := c.role
		if role == "" {
			role = "https/shared"
		}
		got := a.Stream(flow(role, "tcp"), c.first)
		if got != c.want {
			t.Errorf("%s: %q gives %v, want %v", c.name, c.spec, got, c.want)
		}
		d := lastDecision(t, a)
		if d.Action != c.want.String() || (c.want == capture.Pass) != (d.Policy == "") {
			t.Errorf("%s: decision %+v does not say %v", c.name, d, c.want)
		}
		if n := a.Counts()[Join(a.Policies())]; (c.want != capture.Pass) != (n == 1) {
			t.Errorf("%s: count %d after %v", c.name, n, c.want)
		}
	}
}

func TestBlockSNI(t *testing.T) {
	h := newHellos(t, "secret.lab.test")
	other := newHellos(t, "plain.lab.test")
	runStreamCases(t, []streamCase{
		{"plain SNI", "block-sni secret.lab.test", "", h.plain, capture.Drop},
		{"plain SNI, rst", "block-sni SECRET.lab.test. rst", "", h.plain, capture.Reset},
		{"wildcard", "block-sni *.lab.test", "", h.plain, capture.Drop},
		{"GREASE keeps the SNI visible", "block-sni secret.lab.test", "", h.grease, capture.Drop},
		{"other name", "block-sni secret.lab.test", "", other.plain, capture.Pass},
		{"wildcard is not the suffix itself", "block-sni *.secret.lab.test", "", h.plain, capture.Pass},
		{"ECH hides the name", "block-sni secret.lab.test", "", h.ech, capture.Pass},
		{"the public name is visible", "block-sni public.lab.test", "", h.ech, capture.Drop},
		{"not TLS", "block-sni secret.lab.test", "", []byte("GET / HTTP/1.1\r\nHost: secret.lab.test\r\n\r\n"), capture.Pass},
	})
}

func TestBlockECH(t *testing.T) {
	h := newHellos(t, "secret.lab.test")
	runStreamCases(t, []streamCase{
		{"real ECH", "block-ech", "", h.ech, capture.Drop},
		{"real ECH, rst", "block-ech rst", "", h.ech, capture.Reset},
		{"GREASE ECH", "block-ech", "", h.grease, capture.Drop},
		{"on a DoT relay too", "block-ech", "dns/dot", h.ech, capture.Drop},
		{"no ECH", "block-ech", "", h.plain, capture.Pass},
		{"first bytes cut short", "block-ech", "", h.ech[:100], capture.Pass},
	})
}

func TestBlockECHPublic(t *testing.T) {
	h := newHellos(t, "secret.lab.test")
	pub := newHellos(t, "public.lab.test")
	runStreamCases(t, []streamCase{
		{"ECH with the public name", "block-ech-public public.lab.test", "", h.ech, capture.Drop},
		{"rst", "block-ech-public public.lab.test rst", "", h.ech, capture.Reset},
		{"public name without ECH", "block-ech-public public.lab.test", "", pub.plain, capture.Pass},
		{"GREASE to the public name", "block-ech-public public.lab.test", "", pub.grease, capture.Drop},
		{"ECH with another public name", "block-ech-public cloudflare-ech.com", "", h.ech, capture.Pass},
	})
}

// TestBlockECHSize: the censor passes the payload lengths it takes for
// GREASE and blocks the rest; the log has the payload length.
func TestBlockECHSize(t *testing.T) {
	h := newHellos(t, "secret.lab.test")
	real := parsedHello(t, h.ech).ECH
	grease := parsedHello(t, h.grease).ECH
	realLen, otherLen := len(real.Payload), len(real.Payload)+32
	t.Logf("crypto/tls's ECH payload for secret.lab.test: %d bytes (a GREASE size: %v)", realLen, slices.Contains(GreaseSizes, realLen))
	greaseOther := greaseHello(t, h.plain, &ech.GreaseOptions{PayloadLen: otherLen})
	listed, other := "block-ech-size "+strconv.Itoa(realLen), "block-ech-size "+strconv.Itoa(otherLen)
	runStreamCases(t, []streamCase{
		{"GREASE of a BoringSSL length", "block-ech-size", "", greaseHello(t, h.plain, &ech.GreaseOptions{PayloadLen: 176}), capture.Pass},
		{"GREASE of another length", "block-ech-size", "", greaseHello(t, h.plain, &ech.GreaseOptions{PayloadLen: 400}), capture.Drop},
		{"GREASE of a listed length", other, "", greaseOther, capture.Pass},
		{"real ECH", other, "", h.ech, capture.Drop},
		{"real ECH of a listed length", listed, "", h.ech, capture.Pass},
		{"GREASE of an unlisted length (collateral)", listed + " rst", "", greaseOther, capture.Reset},
		{"no ECH", "block-ech-size", "", h.plain, capture.Pass},
	})
	a := mustParse(t, other)
	a.Stream(flow("https/shared", "tcp"), h.ech)
	a.Stream(flow("https/shared", "tcp"), h.grease)
	ds := a.Decisions()
	if ds[0].ECHPayloadLen != len(real.Payload) || ds[0].ECHConfigID == nil || *ds[0].ECHConfigID != 7 ||
		!ds[0].ECH || ds[0].SNI != "public.lab.test" {
		t.Errorf("real ECH decision %+v", ds[0])
	}
	if ds[1].ECHPayloadLen != len(grease.Payload) || *ds[1].ECHConfigID != grease.ConfigID {
		t.Errorf("GREASE decision %+v, want payload %d", ds[1], len(grease.Payload))
	}
}

func TestRstAfterHello(t *testing.T) {
	h := newHellos(t, "secret.lab.test")
	runStreamCases(t, []streamCase{
		{"ECH", "rst-after-hello", "", h.ech, capture.ResetAfterReply},
		{"GREASE", "rst-after-hello", "", h.grease, capture.ResetAfterReply},
		{"no ECH", "rst-after-hello", "", h.plain, capture.Pass},
	})
}

func TestBlockDoHStream(t *testing.T) {
	h := newHellos(t, "resolver.lab.test")
	runStreamCases(t, []streamCase{
		{"DoH relay", "block-doh", "dns/doh", h.plain, capture.Reset},
		{"DoH relay, drop", "block-doh drop", "dns/doh", h.plain, capture.Drop},
		{"DoT relay", "block-doh", "dns/dot", h.plain, capture.Pass},
		{"HTTPS relay", "block-doh", "https/shared", h.plain, capture.Pass},
		{"by relay address", "block-doh 127.0.0.1:8443", "https/shared", h.plain, capture.Reset},
		{"by backend address", "block-doh 127.0.0.1:9443", "dns/dot", h.plain, capture.Reset},
		{"by address, any port", "block-doh 127.0.0.1", "dns/dot", h.plain, capture.Reset},
		{"other address", "block-doh 127.0.0.2", "dns/doh", h.plain, capture.Pass},
		{"other port", "block-doh 127.0.0.1:853", "dns/doh", h.plain, capture.Pass},
		{"by SNI", "block-doh resolver.lab.test", "https/shared", h.plain, capture.Reset},
		{"other SNI", "block-doh dns.example", "dns/doh", h.plain, capture.Pass},
	})
}

// TestMalformedECHStillBlocked: a ClientHello whose ECH extension body
// does not parse (ech.ParseClientHello refuses it) is read leniently: the
// extension is still seen, with its config_id.
func TestMalformedECHStillBlocked(t *testing.T) {
	h := newHellos(t, "secret.lab.test")
	ch := parsedHello(t, h.ech)
	ch.SetExtension(ech.ExtEncryptedHello, []byte{0, 0, 1, 0, 1, 9, 0, 32}) // enc cut short
	raw, err := ch.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	bad := ech.MarshalRecords(raw)
	if _, err := ech.ParseClientHelloRecords(bad); err == nil {
		t.Fatal("the malformed ClientHello parses strictly: the test needs another")
	}
	a := mustParse(t, "block-ech")
	if v := a.Stream(flow("https/shared", "tcp"), bad); v != capture.Drop {
		t.Errorf("malformed ECH: %v, want drop", v)
	}
	d := lastDecision(t, a)
	if d.SNI != "public.lab.test" || !d.ECH || d.ECHConfigID == nil || *d.ECHConfigID != 9 || d.ECHPayloadLen != 0 {
		t.Errorf("decision %+v", d)
	}
}

// TestStreamSeen: every ClientHello's SNI is a sighting, blocked or not;
// a column's first matching policy decides.
func TestStreamSeen(t *testing.T) {
	h := newHellos(t, "Secret.Lab.Test")
	a := mustParse(t, "block-ech rst+block-sni public.lab.test")
	f := flow("https/split", "tcp")
	if v := a.Stream(f, h.ech); v != capture.Reset {
		t.Errorf("ECH: %v, want the first policy's rst", v)
	}
	a.Stream(f, h.plain)
	a.Stream(f, []byte("not TLS"))
	seen := a.Seen()
	want := []Sighting{{f, SawSNI, "public.lab.test"}, {f, SawSNI, "secret.lab.test"}}
	if len(seen) != 2 || seen[0] != want[0] || seen[1] != want[1] {
		t.Errorf("Seen() = %+v, want %+v", seen, want)
	}
	c := a.Counts()
	if c["block-ech rst"] != 1 || c["block-sni public.lab.test"] != 0 || len(c) != 2 {
		t.Errorf("Counts() = %v", c)
	}
	if n := len(a.Decisions()); n != 3 {
		t.Errorf("%d decisions, want one per connection (3)", n)
	}
}
