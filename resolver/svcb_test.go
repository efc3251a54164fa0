package resolver

import (
	"bytes"
	"testing"

	"github.com/miekg/dns"
)

func TestECHParam(t *testing.T) {
	tests := []struct {
		rr   string
		want []byte
		ok   bool
	}{
		{"a.lab.test. 60 IN HTTPS 1 . alpn=h2 ech=AAEC", []byte{0, 1, 2}, true},
		{"a.lab.test. 60 IN SVCB 1 b.lab.test. ech=AwQ=", []byte{3, 4}, true},
		{"a.lab.test. 60 IN HTTPS 1 . alpn=h2", nil, false},
		{"a.lab.test. 60 IN A 127.0.0.1", nil, false},
	}
	for _, tt := range tests {
		rr, err := dns.NewRR(tt.rr)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := ECHParam(rr)
		if ok != tt.ok || !bytes.Equal(got, tt.want) {
			t.Errorf("%s: got %x %v, want %x %v", tt.rr, got, ok, tt.want, tt.ok)
		}
	}
}
