package conformance

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/resolver"
	"github.com/miekg/dns"
)

func testEnv(t *testing.T) *Env {
	t.Helper()
	env, err := NewEnv(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// TestConfigKinds checks each bad kind with the ech package's lenient
// parser: it is skipped for the reason its name says, and carries its id.
func TestConfigKinds(t *testing.T) {
	env := testEnv(t)
	tests := []struct {
		kind   ConfigKind
		sentry error
		field  string
	}{
		{ConfigUnknownVersion, ech.ErrUnsupported, "version"},
		{ConfigMandatoryExt, ech.ErrUnsupported, "extensions"},
		{ConfigPublicNameIP, ech.ErrInvalid, "public_name"},
		{ConfigPublicNameInvalid, ech.ErrInvalid, "public_name"},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			list, err := configList(HTTPSRecord{ECH: []ConfigKind{tt.kind, ConfigGood}}, env)
			if err != nil {
				t.Fatal(err)
			}
			l, err := ech.ParseConfigListLenient(list)
			if err != nil {
				t.Fatal(err)
			}
			if len(l.Configs) != 1 || l.Configs[0].ConfigID != 1 || len(l.Skipped) != 1 {
				t.Fatalf("parsed %d configs, %d skipped; want the good one kept and one skipped", len(l.Configs), len(l.Skipped))
			}
			s := l.Skipped[0]
			var fe *ech.FieldError
			if !errors.Is(s.Err, tt.sentry) || !errors.As(s.Err, &fe) || fe.Field != tt.field {
				t.Fatalf("skipped for %v, want %v on field %s", s.Err, tt.sentry, tt.field)
			}
			if id, ok := s.ConfigID(); ok && id != kindIDs[tt.kind] {
				t.Fatalf("config id %d, want %d", id, kindIDs[tt.kind])
			}
		})
	}
}

// TestZonesPublishExactBytes loads every case's zone with the resolver's
// parser and checks that the ech SvcParam holds exactly the list built,
// edits included.
func TestZonesPublishExactBytes(t *testing.T) {
	env := testEnv(t)
	for _, c := range Catalogue() {
		text, err := ZoneText(c.DNS, env, 4443)
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		if _, err := resolver.ParseZone(strings.NewReader(text), LabZone, c.Name); err != nil {
			t.Fatalf("%s: the resolver does not load the zone: %v", c.Name, err)
		}
		zp := dns.NewZoneParser(strings.NewReader(text), LabZone, c.Name)
		var https []*dns.SVCB
		for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
			switch h := rr.(type) {
			case *dns.HTTPS:
				https = append(https, &h.SVCB)
			case *dns.SVCB:
				https = append(https, h)
			}
		}
		recs := c.DNS.records()
		if len(https) != len(recs) {
			t.Fatalf("%s: %d HTTPS or SVCB records in the zone, want %d", c.Name, len(https), len(recs))
		}
		for i, r := range recs {
			if want := map[bool]uint16{false: dns.TypeHTTPS, true: dns.TypeSVCB}[r.SVCB]; https[i].Hdr.Rrtype != want {
				t.Errorf("%s record %d: type %d, want %d", c.Name, i, https[i].Hdr.Rrtype, want)
			}
			var got []byte
			var mandatory []dns.SVCBKey
			unknown := false
			for _, kv := range https[i].Value {
				switch e := kv.(type) {
				case *dns.SVCBECHConfig:
					got = e.ECH
				case *dns.SVCBMandatory:
					mandatory = e.Code
				case *dns.SVCBLocal:
					unknown = e.KeyCode == unknownKey && string(e.Data) == "x"
				}
			}
			if slices.Contains(mandatory, dns.SVCB_ECHCONFIG) != r.MandatoryECH ||
				slices.Contains(mandatory, unknownKey) != r.UnknownMandatory || unknown != r.UnknownMandatory {
				t.Errorf("%s record %d: mandatory %v, key65000 %v; declared %+v", c.Name, i, mandatory, unknown, r)
			}
			if len(r.ECH) == 0 {
				if got != nil {
					t.Errorf("%s record %d: ech published, none declared", c.Name, i)
				}
				continue
			}
			want, err := configList(r, env)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s record %d: ech %x, want %x", c.Name, i, got, want)
			}
		}
	}
}

func TestZoneNames(t *testing.T) {
	env := testEnv(t)
	d := DNSSpec{Records: []HTTPSRecord{{Target: "alias1"}, {Owner: "alias1", Priority: 1, Target: ".", ZeroTTL: true}}}
	text, err := ZoneText(d, env, 8443)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"_8443._https.secret.lab.test. 60 IN TYPE65", "alias1.lab.test. 0 IN TYPE65"} {
		if !strings.Contains(text, want) {
			t.Errorf("zone lacks %q:\n%s", want, text)
		}
	}
}
