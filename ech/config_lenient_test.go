package ech

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/crypto/cryptobyte"
)

// rawConfig encodes one ECHConfig entry (version, length, contents).
func rawConfig(version uint16, contents []byte) []byte {
	var b cryptobyte.Builder
	b.AddUint16(version)
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(contents) })
	return b.BytesOrPanic()
}

// contentsWith is validFields (config_id 7) with the named fields replaced
// and an optional (non-mandatory) extension instead of the mandatory one.
func contentsWith(repl ...contentsField) []byte {
	fs := validFields()
	repl = append([]contentsField{{"extensions", []byte{0, 6, 0x0e, 0xfe, 0, 2, 0xca, 0xfe}}}, repl...)
	for _, r := range repl {
		for i := range fs {
			if fs[i].name == r.name {
				fs[i].data = r.data
			}
		}
	}
	return joinFields(fs)
}

func nameField(name string) contentsField {
	return contentsField{"public_name", append([]byte{byte(len(name))}, name...)}
}

func mustList(t testing.TB, configs ...[]byte) []byte {
	t.Helper()
	l, err := MarshalConfigList(configs...)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// skipWant is what one skipped config must look like.
type skipWant struct {
	index    int
	sentinel error
	field    string
	configID int // -1: not readable
	parsed   bool
}

func TestParseConfigListLenient(t *testing.T) {
	good, err := GenerateKey(KeyOptions{ConfigID: 2})
	if err != nil {
		t.Fatal(err)
	}
	g := good.Config.Raw
	badName := rawConfig(Version, contentsWith(nameField("bad_name.lab.test")))
	ipv4Name := rawConfig(Version, contentsWith(nameField("192.0.2.1")))
	mandatory := rawConfig(Version, contentsWith(contentsField{"extensions", []byte{0, 4, 0xfa, 0x00, 0, 0}}))
	trailing := rawConfig(Version, append(contentsWith(), 0))
	dupExt := rawConfig(Version, contentsWith(contentsField{"extensions", []byte{0, 8, 0, 1, 0, 0, 0, 1, 0, 0}}))
	cutKey := rawConfig(Version, []byte{9, 0, 0x20, 0, 32, 1, 2})
	unknown := rawConfig(0xfe0c, []byte{1, 2, 3})
	cases := []struct {
		name   string
		in     []byte
		good   int // configs returned
		skips  []skipWant
		strict error // what ParseConfigList says of the same bytes (nil: no error)
	}{
		{"bad public_name then good", mustList(t, badName, g), 1,
			[]skipWant{{0, ErrInvalid, "public_name", 7, true}}, ErrInvalid},
		{"good then IPv4 public_name", mustList(t, g, ipv4Name), 1,
			[]skipWant{{1, ErrInvalid, "public_name", 7, true}}, ErrInvalid},
		{"unknown version then good", mustList(t, unknown, g), 1,
			[]skipWant{{0, ErrUnsupported, "version", -1, false}}, nil},
		{"mandatory unknown extension then good", mustList(t, mandatory, g), 1,
			[]skipWant{{0, ErrUnsupported, "extensions", 7, true}}, nil},
		{"trailing bytes in contents then good", mustList(t, trailing, g), 1,
			[]skipWant{{0, ErrMalformed, "length", 7, false}}, ErrMalformed},
		{"duplicate extension then good", mustList(t, dupExt, g), 1,
			[]skipWant{{0, ErrInvalid, "extensions", 7, true}}, ErrInvalid},
		{"truncated public key between goods", mustList(t, g, cutKey, g), 2,
			[]skipWant{{1, ErrMalformed, "public_key", 9, false}}, ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l, err := ParseConfigListLenient(tc.in)
			if err != nil {
				t.Fatalf("lenient parse: %v", err)
			}
			if len(l.Configs) != tc.good {
				t.Fatalf("%d configs, want %d", len(l.Configs), tc.good)
			}
			for _, c := range l.Configs {
				if !bytes.Equal(c.Raw, g) {
					t.Fatalf("returned config %x is not the good one", c.Raw)
				}
			}
			checkSkipped(t, l.Skipped, tc.skips)
			checkRoundTrip(t, l, tc.in)
			if _, err := ParseConfigList(tc.in); (tc.strict == nil) != (err == nil) || (err != nil && !errors.Is(err, tc.strict)) {
				t.Fatalf("strict parse: %v, want %v", err, tc.strict)
			}
		})
	}
}

func checkSkipped(t *testing.T, got []SkippedConfig, want []skipWant) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d skipped, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		s := &got[i]
		var fe *FieldError
		if s.Index != w.index || !errors.Is(s.Err, w.sentinel) || !errors.As(s.Err, &fe) || fe.Field != w.field {
			t.Fatalf("skipped %d: index %d err %v, want index %d %v on %s", i, s.Index, s.Err, w.index, w.sentinel, w.field)
		}
		id, ok := s.ConfigID()
		if (w.configID < 0) == ok || (ok && int(id) != w.configID) {
			t.Fatalf("skipped %d: config_id %d,%v, want %d", i, id, ok, w.configID)
		}
		if (s.Config != nil) != w.parsed || s.Bad() == errors.Is(w.sentinel, ErrUnsupported) {
			t.Fatalf("skipped %d: parsed %v bad %v", i, s.Config != nil, s.Bad())
		}
		if !strings.Contains(s.String(), "["+strconv.Itoa(w.index)+"]") {
			t.Fatalf("description %q does not name index %d", s.String(), w.index)
		}
	}
}

func checkRoundTrip(t *testing.T, l *ConfigList, in []byte) {
	t.Helper()
	out, err := l.Marshal()
	if err != nil || !bytes.Equal(out, in) {
		t.Fatalf("round trip: %v\n got %x\nwant %x", err, out, in)
	}
}

// frame puts a 2-byte length before body, without any check.
func frame(body ...[]byte) []byte {
	b := bytes.Join(body, nil)
	return append([]byte{byte(len(b) >> 8), byte(len(b))}, b...)
}

// TestParseConfigListLenientAllBad: a well-framed list with nothing usable
// is an error naming every config and why, and the list still comes back.
func TestParseConfigListLenientAllBad(t *testing.T) {
	badName := rawConfig(Version, contentsWith(nameField("-bad.lab.test")))
	mandatory := rawConfig(Version, contentsWith(contentsField{"config_id", []byte{5}},
		contentsField{"extensions", []byte{0, 4, 0xfa, 0x00, 0, 0}}))
	unknown := rawConfig(0xbadd, []byte{1})
	in := mustList(t, badName, unknown, mandatory)
	l, err := ParseConfigListLenient(in)
	var nu *NoUsableConfigError
	if !errors.As(err, &nu) || !errors.Is(err, ErrNoUsableConfig) || !errors.Is(err, ErrInvalid) || !errors.Is(err, ErrUnsupported) {
		t.Fatalf("error %v, want a NoUsableConfigError", err)
	}
	if l == nil || len(l.Configs) != 0 || len(nu.Skipped) != 3 {
		t.Fatalf("list %+v, skipped %d", l, len(nu.Skipped))
	}
	checkRoundTrip(t, l, in)
	msg := err.Error()
	for _, want := range []string{
		`config [0] (config_id 7): ech: ECHConfig.public_name: "-bad.lab.test" has an invalid label`,
		"config [1] (version 0xbadd): ech: ECHConfig.version: version 0xbadd is not 0xfe0d",
		"config [2] (config_id 5): ech: ECHConfig.extensions: mandatory extension 0xfa00 is not implemented",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q\ndoes not say %q", msg, want)
		}
	}
	if !strings.HasPrefix(msg, "ech: ") {
		t.Errorf("message %q does not start with the package name", msg)
	}
}

// TestParseConfigListLenientFraming: broken length prefixes fail the whole
// list with the same typed errors as the strict parse, and no list.
func TestParseConfigListLenientFraming(t *testing.T) {
	good, _ := GenerateKey(KeyOptions{ConfigID: 2})
	valid := mustList(t, good.Config.Raw)
	cases := []struct {
		name         string
		in           []byte
		sentinel     error
		strct, field string
	}{
		{"empty input", nil, ErrMalformed, "ECHConfigList", "length"},
		{"list length too long", append([]byte{0xff, 0xff}, valid[2:]...), ErrMalformed, "ECHConfigList", "length"},
		{"trailing bytes after list", append(append([]byte(nil), valid...), 0), ErrMalformed, "ECHConfigList", "length"},
		{"empty list", []byte{0, 0}, ErrInvalid, "ECHConfigList", "length"},
		{"config length past list end", []byte{0, 4, 0xfe, 0x0d, 0, 9}, ErrMalformed, "ECHConfig", "length"},
		{"good config then a cut header", frame(good.Config.Raw, []byte{0xfe, 0x0d, 0}), ErrMalformed, "ECHConfig", "length"},
		{"good config then a length past the end", frame(good.Config.Raw, []byte{0xfe, 0x0d, 0, 1}), ErrMalformed, "ECHConfig", "length"},
		{"unknown version with a length past the end", frame(good.Config.Raw, []byte{0x12, 0x34, 0, 9, 0}), ErrMalformed, "ECHConfig", "length"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l, err := ParseConfigListLenient(tc.in)
			if l != nil || errors.Is(err, ErrNoUsableConfig) {
				t.Fatalf("broken framing gave a list (%v)", err)
			}
			requireFieldError(t, err, tc.sentinel, tc.strct, tc.field)
		})
	}
}

// TestParseConfigListLenientGoVectors: Go's crypto/tls vectors come back
// byte-exactly, and no config with a mandatory extension is returned.
func TestParseConfigListLenientGoVectors(t *testing.T) {
	lists, _, _ := goTLSLists(t)
	for i, in := range lists {
		l, err := ParseConfigListLenient(in)
		if l == nil {
			t.Fatalf("vector %d: %v", i, err)
		}
		checkRoundTrip(t, l, in)
		for _, c := range l.Configs {
			if len(c.MandatoryExtensions()) > 0 {
				t.Fatalf("vector %d: config %d with a mandatory extension returned", i, c.ConfigID)
			}
		}
	}
}

func FuzzParseConfigListLenient(f *testing.F) {
	lists, _, _ := goTLSLists(f)
	for _, l := range lists {
		f.Add(l)
	}
	good := fuzzKey(f)
	f.Add(mustList(f, rawConfig(Version, contentsWith(nameField("192.0.2.1"))), good.Config.Raw))
	f.Add(mustList(f, rawConfig(Version, append(contentsWith(), 0)), good.Config.Raw))
	f.Add([]byte{0, 8, 0xfe, 0x0c, 0, 0, 0xfe, 0x0e, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		l, err := ParseConfigListLenient(in)
		if l == nil {
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("no list and no FieldError: %v", err)
			}
			return
		}
		if (err != nil) != (len(l.Configs) == 0) || (err != nil && !errors.Is(err, ErrNoUsableConfig)) {
			t.Fatalf("%d configs with error %v", len(l.Configs), err)
		}
		for i := range l.Configs {
			c := l.Configs[i]
			raw := c.Raw
			again, err := c.Marshal()
			if err != nil || !bytes.Equal(again, raw) {
				t.Fatalf("config %d does not re-marshal byte-exactly: %v\n got %x\nwant %x", i, err, again, raw)
			}
		}
		for _, s := range l.Skipped {
			if s.Err == nil {
				t.Fatalf("config [%d] skipped without a reason", s.Index)
			}
		}
		checkRoundTrip(t, l, in)
	})
}

// TestDecodeConfigListTextKeepsBadConfigs: pasted text (base64, ech=) of a
// well-framed list with a bad config decodes, so a client can skip it and
// ech inspect can name it; broken framing still fails.
func TestDecodeConfigListTextKeepsBadConfigs(t *testing.T) {
	good, _ := GenerateKey(KeyOptions{ConfigID: 2})
	list := mustList(t, rawConfig(Version, contentsWith(nameField("192.0.2.1"))), good.Config.Raw)
	for _, in := range []string{base64.StdEncoding.EncodeToString(list), "ech=" + base64.StdEncoding.EncodeToString(list)} {
		got, err := DecodeConfigListText(in)
		if err != nil || !bytes.Equal(got, list) {
			t.Fatalf("%q: %x, %v", in, got, err)
		}
	}
	if _, err := DecodeConfigListText(base64.StdEncoding.EncodeToString(list[:len(list)-1])); !errors.Is(err, ErrMalformed) {
		t.Fatalf("cut list: %v", err)
	}
}
