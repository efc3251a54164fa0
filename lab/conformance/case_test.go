package conformance

import (
	"errors"
	"strings"
	"testing"
)

func TestCatalogueValid(t *testing.T) {
	if err := ValidateCatalogue(Catalogue()); err != nil {
		t.Fatal(err)
	}
}

// TestBadCases checks that each kind of bad definition gives an error
// naming the case and the problem.
func TestBadCases(t *testing.T) {
	good := Catalogue()[0]
	tests := []struct {
		name string
		edit func(c *Case)
		want string
	}{
		{"unknown variant", func(c *Case) { c.Server = "teapot" }, `unknown server variant "teapot"`},
		{"empty expectation", func(c *Case) { c.Expect.Outcomes = nil }, "empty expectation"},
		{"unknown outcome", func(c *Case) { c.Expect.Outcomes = []Outcome{"maybe"} }, `unknown outcome "maybe"`},
		{"no level", func(c *Case) { c.Expect.Level = "" }, "level"},
		{"bad name", func(c *Case) { c.Name = "Bad Name" }, "name must be"},
		{"no RFC", func(c *Case) { c.RFC = "" }, "RFC text"},
		{"unknown config kind", func(c *Case) { c.DNS = only("shiny") }, `unknown config kind "shiny"`},
		{"edit without configs", func(c *Case) { c.DNS.Records = []HTTPSRecord{{Priority: 1, Edit: EditTruncated}} }, "without configs"},
		{"alias with params", func(c *Case) { c.DNS.Records = []HTTPSRecord{{ECH: []ConfigKind{ConfigGood}}} }, "AliasMode"},
		{"alias with unknown key", func(c *Case) { c.DNS.Records = []HTTPSRecord{{Target: "x", UnknownMandatory: true}} }, "AliasMode"},
		{"absolute name", func(c *Case) { c.DNS.Records = []HTTPSRecord{{Priority: 1, Target: "x.example."}} }, "relative to lab.test"},
		{"bad transport", func(c *Case) { c.DNS.Transport = "carrier-pigeon" }, "DNS transport"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			c.Expect.Outcomes = append([]Outcome(nil), good.Expect.Outcomes...)
			tt.edit(&c)
			err := c.Validate()
			if !errors.Is(err, ErrCase) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), c.Name) {
				t.Fatalf("Validate = %v, want ErrCase naming %q and %q", err, c.Name, tt.want)
			}
		})
	}
}

func TestDuplicateName(t *testing.T) {
	cs := Catalogue()
	err := ValidateCatalogue(append(cs, cs[3]))
	if err == nil || !strings.Contains(err.Error(), `"`+cs[3].Name+`": duplicate name`) {
		t.Fatalf("ValidateCatalogue = %v, want a duplicate name error", err)
	}
}

func TestSelectCases(t *testing.T) {
	got, err := SelectCases([]string{"ttl-zero", "baseline"})
	if err != nil || len(got) != 2 || got[0].Name != "baseline" || got[1].Name != "ttl-zero" {
		t.Fatalf("SelectCases = %v, %v; want baseline, ttl-zero in catalogue order", got, err)
	}
	if _, err := SelectCases([]string{"baseline", "nope"}); err == nil || !strings.Contains(err.Error(), "unknown case nope") {
		t.Fatalf("SelectCases(nope) = %v", err)
	}
}
