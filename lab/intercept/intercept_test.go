package intercept

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/echlab/echlab/lab/capture"
)

func TestParseTargets(t *testing.T) {
	got, err := ParseTargets("dns/do53=tcp+udp/10.203.1.53:53, https/shared=tcp/10.203.1.10:443", "dns/doq=udp/10.203.1.53:853")
	if err != nil {
		t.Fatal(err)
	}
	want := []Target{
		{Role: "dns/do53", Proto: "tcp", Dest: netip.MustParseAddrPort("10.203.1.53:53")},
		{Role: "dns/do53", Proto: "udp", Dest: netip.MustParseAddrPort("10.203.1.53:53")},
		{Role: "https/shared", Proto: "tcp", Dest: netip.MustParseAddrPort("10.203.1.10:443")},
		{Role: "dns/doq", Proto: "udp", Dest: netip.MustParseAddrPort("10.203.1.53:853")},
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("target %d: got %v, want %v", i, got[i], want[i])
		}
	}
	if s := got[0].String(); s != "dns/do53=tcp/10.203.1.53:53" {
		t.Errorf("String() = %q", s)
	}
}

func TestParseTargetsErrors(t *testing.T) {
	for _, tc := range []struct{ spec, want string }{
		{"https/shared", "want ROLE=PROTO/ADDR:PORT"},
		{"https/shared=10.0.0.1:443", "want ROLE=PROTO/ADDR:PORT"},
		{"https/shared=sctp/10.0.0.1:443", `protocol "sctp"`},
		{"https/shared=tcp/10.0.0.1", "10.0.0.1"},
		{"https/shared=tcp/[::1]:443", "IPv4"},
		{"https/shared=tcp/10.0.0.1:0", "IPv4 address and a port"},
		{"=tcp/10.0.0.1:443", "no role"},
	} {
		_, err := ParseTargets(tc.spec)
		if !errors.Is(err, ErrTarget) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseTargets(%q) = %v, want ErrTarget mentioning %q", tc.spec, err, tc.want)
		}
	}
}

func TestConfigPopulate(t *testing.T) {
	ts, err := ParseTargets("a=tcp/10.0.0.1:443")
	if err != nil {
		t.Fatal(err)
	}
	c := Config{Observer: &capture.Observer{}, Targets: ts}
	if err := c.populate(); err != nil || c.Mark != DefaultMark || c.Table != DefaultTable {
		t.Errorf("populate: %v, mark %#x, table %q", err, c.Mark, c.Table)
	}
	twice, _ := ParseTargets("a=tcp/10.0.0.1:443,b=tcp+udp/10.0.0.1:443")
	for name, c := range map[string]Config{
		"no observer": {Targets: ts},
		"no targets":  {Observer: &capture.Observer{}},
		"twice":       {Observer: &capture.Observer{}, Targets: twice},
	} {
		if err := c.populate(); err == nil {
			t.Errorf("%s: populate accepted %+v", name, c)
		}
	}
}
