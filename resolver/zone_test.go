package resolver

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func TestLoadZoneFile(t *testing.T) {
	z, err := LoadZoneFile("testdata/lab.test.zone", "")
	if err != nil {
		t.Fatal(err)
	}
	if z.Origin != "lab.test." || z.Serial() != 2026010101 {
		t.Errorf("origin %q serial %d", z.Origin, z.Serial())
	}
	if !z.exists("deep.wild.lab.test.") || z.nodes["deep.wild.lab.test."] != nil {
		t.Errorf("deep.wild.lab.test. should be an empty non-terminal")
	}
	if n := len(z.rrset("big.lab.test.", dns.TypeTXT)); n != 16 {
		t.Errorf("%d TXT records at big, want 16", n)
	}
	// The origin can come from the caller when the file has no $ORIGIN.
	z2, err := ParseZone(strings.NewReader("@ 60 IN SOA ns hm 1 2 3 4 5\nwww 60 IN A 192.0.2.1\n"), "given.test", "inline")
	if err != nil {
		t.Fatal(err)
	}
	if z2.Origin != "given.test." || len(z2.rrset("www.given.test.", dns.TypeA)) != 1 {
		t.Errorf("relative names not placed under the given origin")
	}
}

func TestZoneErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, text string
		want       []string // substrings of the message
	}{
		{"syntax error names file and line", "$ORIGIN bad.test.\n@ 60 IN SOA ns hm 1 2 3 4 5\nwww 60 IN A not-an-address\n",
			[]string{"syntax error names file and line.zone", "line: 3"}},
		{"no SOA", "$ORIGIN bad.test.\nwww 60 IN A 192.0.2.1\n", []string{"no SOA"}},
		{"outside the zone", "$ORIGIN bad.test.\n@ 60 IN SOA ns hm 1 2 3 4 5\nwww.elsewhere. 60 IN A 192.0.2.1\n", []string{"outside the zone"}},
		{"CNAME and other data", "$ORIGIN bad.test.\n@ 60 IN SOA ns hm 1 2 3 4 5\nx 60 IN A 192.0.2.1\nx 60 IN CNAME y\n", []string{"CNAME at x.bad.test."}},
		{"two CNAMEs", "$ORIGIN bad.test.\n@ 60 IN SOA ns hm 1 2 3 4 5\nx 60 IN CNAME y\nx 60 IN CNAME z\n", []string{"more than one CNAME"}},
		{"class CH", "$ORIGIN bad.test.\n@ 60 IN SOA ns hm 1 2 3 4 5\nx 60 CH TXT \"a\"\n", []string{"class CH"}},
		{"include refused", "$ORIGIN bad.test.\n@ 60 IN SOA ns hm 1 2 3 4 5\n$INCLUDE /etc/passwd\n", []string{"$INCLUDE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := filepath.Join(dir, tt.name+".zone")
			if err := os.WriteFile(f, []byte(tt.text), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := LoadZoneFile(f, "")
			if err == nil {
				t.Fatal("loaded")
			}
			if !errors.Is(err, ErrZone) {
				t.Errorf("%v does not wrap ErrZone", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not say %q", err, w)
				}
			}
		})
	}
	if _, err := LoadZoneFile(filepath.Join(dir, "missing.zone"), ""); err == nil || !strings.Contains(err.Error(), "missing.zone") {
		t.Errorf("missing file: %v", err)
	}
}

func TestDuplicateZones(t *testing.T) {
	zs := testZones(t)
	if _, err := newAuthority(append(zs, zs[0])); !errors.Is(err, ErrDuplicateZone) {
		t.Errorf("got %v, want ErrDuplicateZone", err)
	}
}
