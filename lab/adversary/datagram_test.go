package adversary

import (
	"bytes"
	"testing"

	"github.com/echlab/echlab/lab/capture"
)

// datagramCase is one UDP datagram of a role put to one column.
type datagramCase struct {
	name     string
	spec     string
	f        capture.Flow
	toServer bool
	want     capture.Verdict
}

func TestDatagramPolicies(t *testing.T) {
	quic := append([]byte{0xc3, 0, 0, 0, 1}, bytes.Repeat([]byte{0x5a}, 1195)...) // a QUIC v1 long header
	port853 := flow("dns/doq", "udp")
	port853.Backend = "127.0.0.1:853"
	cases := []datagramCase{
		{"HTTP/3 to an HTTPS service", "drop-udp", flow("https/shared", "udp"), true, capture.Drop},
		{"HTTP/3 back to the client", "drop-udp 443", flow("https/split", "udp"), false, capture.Drop},
		{"DoH3 is not an HTTPS service", "drop-udp", flow("dns/doh3", "udp"), true, capture.Pass},
		{"by backend port", "drop-udp 853", port853, true, capture.Drop},
		{"by relay port", "drop-udp 8443", flow("dns/doq", "udp"), true, capture.Drop},
		{"other port", "drop-udp 853", flow("https/shared", "udp"), true, capture.Pass},
		{"DoH3 relay", "block-doh", flow("dns/doh3", "udp"), true, capture.Reset},
		{"DoH3 relay, drop", "block-doh drop", flow("dns/doh3", "udp"), false, capture.Drop},
		{"DoH3 by address", "block-doh 127.0.0.1:9443", flow("dns/doq", "udp"), true, capture.Reset},
		{"HTTP/3 is not DoH", "block-doh", flow("https/shared", "udp"), true, capture.Pass},
		{"by name: no QUIC SNI", "block-doh resolver.lab.test", flow("dns/doh3", "udp"), true, capture.Pass},
		{"a TCP policy", "block-ech", flow("https/shared", "udp"), true, capture.Pass},
	}
	for _, c := range cases {
		a := mustParse(t, c.spec)
		out, v := a.Datagram(c.f, c.toServer, quic)
		if v != c.want {
			t.Errorf("%s: %q gives %v, want %v", c.name, c.spec, v, c.want)
			continue
		}
		ds := a.Decisions()
		if c.want == capture.Pass {
			if !bytes.Equal(out, quic) || len(ds) != 0 {
				t.Errorf("%s: passed %d bytes with decisions %+v", c.name, len(out), ds)
			}
			continue
		}
		if out != nil || len(ds) != 1 || ds[0].Action != c.want.String() || ds[0].Policy != Join(a.Policies()) ||
			a.Counts()[Join(a.Policies())] != 1 {
			t.Errorf("%s: out %d bytes, decisions %+v, counts %v", c.name, len(out), ds, a.Counts())
		}
	}
}
