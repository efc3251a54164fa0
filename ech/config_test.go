package ech

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/crypto/cryptobyte"
)

// goTLSLists reads testdata/go-tls-lists.hex (vectors from Go's crypto/tls).
func goTLSLists(t testing.TB) (lists [][]byte, configs, skipped []int) {
	t.Helper()
	f, err := os.Open("testdata/go-tls-lists.hex")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 3 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		b, err := hex.DecodeString(fields[0])
		if err != nil {
			t.Fatal(err)
		}
		nc, _ := strconv.Atoi(fields[1])
		ns, _ := strconv.Atoi(fields[2])
		lists, configs, skipped = append(lists, b), append(configs, nc), append(skipped, ns)
	}
	if len(lists) == 0 {
		t.Fatal("no vectors in testdata/go-tls-lists.hex")
	}
	return lists, configs, skipped
}

func TestParseConfigListVectors(t *testing.T) {
	lists, nc, ns := goTLSLists(t)
	for i, b := range lists {
		l, err := ParseConfigList(b)
		if err != nil {
			t.Fatalf("vector %d: %v", i, err)
		}
		if len(l.Configs) != nc[i] || len(l.Skipped) != ns[i] {
			t.Fatalf("vector %d: %d configs %d skipped, want %d and %d", i, len(l.Configs), len(l.Skipped), nc[i], ns[i])
		}
		out, err := l.Marshal()
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("vector %d: re-marshal differs (%v)\n got %x\nwant %x", i, err, out, b)
		}
	}
	l, _ := ParseConfigList(lists[0])
	c := l.Configs[0]
	if c.ConfigID != 0x59 || c.KEM != KEMX25519HKDFSHA256 || len(c.PublicKey) != 32 ||
		c.PublicName != "cloudflare-ech.com" || c.CipherSuites[0] != (CipherSuite{1, 1}) {
		t.Fatalf("cloudflare config decoded wrong: %+v", c)
	}
	l, _ = ParseConfigList(lists[1])
	if got := l.Configs[2].MandatoryExtensions(); len(got) != 1 || got[0] != 0xaaaa {
		t.Fatalf("mandatory extensions %x, want [aaaa]", got)
	}
	if l.Skipped[0].Version != 0xbadd || l.Skipped[0].Index != 0 {
		t.Fatalf("skipped %+v", l.Skipped[0])
	}
}

// TestConfigListSkippedOrder puts an unknown-version config at every
// position of a list and checks parse→marshal gives the same bytes.
func TestConfigListSkippedOrder(t *testing.T) {
	a, _ := GenerateKey(KeyOptions{ConfigID: 1})
	b, _ := GenerateKey(KeyOptions{ConfigID: 2, KEM: KEMP256HKDFSHA256})
	unknown := []byte{0xfe, 0x0c, 0x00, 0x03, 1, 2, 3}
	known := [][]byte{a.Config.Raw, b.Config.Raw}
	for pos := 0; pos <= len(known); pos++ {
		for _, twice := range []bool{false, true} {
			var parts [][]byte
			parts = append(parts, known[:pos]...)
			parts = append(parts, unknown)
			if twice {
				parts = append(parts, unknown)
			}
			parts = append(parts, known[pos:]...)
			in, err := MarshalConfigList(parts...)
			if err != nil {
				t.Fatal(err)
			}
			l, err := ParseConfigList(in)
			if err != nil {
				t.Fatal(err)
			}
			out, err := l.Marshal()
			if err != nil || !bytes.Equal(out, in) {
				t.Fatalf("pos %d twice %v: round trip differs\n got %x\nwant %x", pos, twice, out, in)
			}
		}
	}
}

// contentsField is one field of ECHConfigContents as encoded bytes.
type contentsField struct {
	name string
	data []byte
}

func validFields() []contentsField {
	pub := bytes.Repeat([]byte{0xaa}, 32)
	return []contentsField{
		{"config_id", []byte{7}},
		{"kem_id", []byte{0x00, 0x20}},
		{"public_key", append([]byte{0, 32}, pub...)},
		{"cipher_suites", []byte{0, 8, 0, 1, 0, 1, 0, 1, 0, 3}},
		{"maximum_name_length", []byte{0}},
		{"public_name", append([]byte{15}, "public.lab.test"...)},
		{"extensions", []byte{0, 6, 0xfe, 0xfe, 0, 2, 0xca, 0xfe}},
	}
}

func wrapConfig(contents []byte) []byte {
	var b cryptobyte.Builder
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		b.AddUint16(Version)
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(contents) })
	})
	return b.BytesOrPanic()
}

func joinFields(fs []contentsField) []byte {
	var out []byte
	for _, f := range fs {
		out = append(out, f.data...)
	}
	return out
}

func withField(name string, data []byte) []byte {
	fs := validFields()
	for i := range fs {
		if fs[i].name == name {
			fs[i].data = data
		}
	}
	return wrapConfig(joinFields(fs))
}

func withName(name string) []byte {
	return withField("public_name", append([]byte{byte(len(name))}, name...))
}

func TestParseConfigListValidBaseline(t *testing.T) {
	l, err := ParseConfigList(wrapConfig(joinFields(validFields())))
	if err != nil {
		t.Fatal(err)
	}
	if e := l.Configs[0].Extensions; len(e) != 1 || e[0].Type != 0xfefe || !e[0].Mandatory() {
		t.Fatalf("extensions %+v", e)
	}
}

// TestParseConfigTruncatedAtEveryField cuts the contents inside each field
// (with consistent outer lengths) and expects ErrMalformed naming it.
func TestParseConfigTruncatedAtEveryField(t *testing.T) {
	fs := validFields()
	for i, f := range fs {
		for cut := 0; cut < len(f.data); cut++ {
			contents := append(joinFields(fs[:i]), f.data[:cut]...)
			_, err := ParseConfigList(wrapConfig(contents))
			requireFieldError(t, err, ErrMalformed, "ECHConfig", f.name)
		}
	}
}

func TestParseConfigListMalformed(t *testing.T) {
	valid := wrapConfig(joinFields(validFields()))
	longLabel := strings.Repeat("a", 64) + ".test"
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
		{"list shorter than a config header", []byte{0, 3, 0xfe, 0x0d, 0}, ErrInvalid, "ECHConfigList", "length"},
		{"config length past list end", []byte{0, 4, 0xfe, 0x0d, 0, 9}, ErrMalformed, "ECHConfig", "length"},
		{"unknown version, bad length", []byte{0, 5, 0x12, 0x34, 0, 9, 0}, ErrMalformed, "ECHConfig", "length"},
		{"trailing bytes in contents", wrapConfig(append(joinFields(validFields()), 0)), ErrMalformed, "ECHConfig", "length"},
		{"empty public key", withField("public_key", []byte{0, 0}), ErrMalformed, "ECHConfig", "public_key"},
		{"empty cipher suites", withField("cipher_suites", []byte{0, 0}), ErrMalformed, "ECHConfig", "cipher_suites"},
		{"cipher suites not a multiple of 4", withField("cipher_suites", []byte{0, 6, 0, 1, 0, 1, 0, 1}), ErrMalformed, "ECHConfig", "cipher_suites"},
		{"public key length past end", withField("public_key", []byte{0xff, 0xff, 1}), ErrMalformed, "ECHConfig", "public_key"},
		{"empty public name", withField("public_name", []byte{0}), ErrMalformed, "ECHConfig", "public_name"},
		{"IPv4 public name", withName("192.168.0.1"), ErrInvalid, "ECHConfig", "public_name"},
		{"hex IPv4 public name", withName("0x7f"), ErrInvalid, "ECHConfig", "public_name"},
		{"empty hex last label", withName("test.0x"), ErrInvalid, "ECHConfig", "public_name"},
		{"numeric last label", withName("lab.1234"), ErrInvalid, "ECHConfig", "public_name"},
		{"IPv6 public name", withName("::1"), ErrInvalid, "ECHConfig", "public_name"},
		{"leading dot", withName(".lab.test"), ErrInvalid, "ECHConfig", "public_name"},
		{"trailing dot", withName("lab.test."), ErrInvalid, "ECHConfig", "public_name"},
		{"empty label", withName("lab..net"), ErrInvalid, "ECHConfig", "public_name"},
		{"hyphen at label start", withName("-lab.test"), ErrInvalid, "ECHConfig", "public_name"},
		{"underscore", withName("l_b.test"), ErrInvalid, "ECHConfig", "public_name"},
		{"label of 64 octets", withName(longLabel), ErrInvalid, "ECHConfig", "public_name"},
		{"non-ASCII name", withName("é.test"), ErrInvalid, "ECHConfig", "public_name"},
		{"extension data past end", withField("extensions", []byte{0, 4, 0, 1, 0, 9}), ErrMalformed, "ECHConfig", "extensions"},
		{"extension header cut", withField("extensions", []byte{0, 3, 0, 1, 0}), ErrMalformed, "ECHConfig", "extensions"},
		{"duplicate extension", withField("extensions", []byte{0, 8, 0, 1, 0, 0, 0, 1, 0, 0}), ErrInvalid, "ECHConfig", "extensions"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfigList(tc.in)
			requireFieldError(t, err, tc.sentinel, tc.strct, tc.field)
		})
	}
}

func requireFieldError(t *testing.T, err, sentinel error, strct, field string) {
	t.Helper()
	var fe *FieldError
	if !errors.Is(err, sentinel) || !errors.As(err, &fe) || fe.Struct != strct || fe.Field != field {
		t.Fatalf("error %v, want %v on %s.%s", err, sentinel, strct, field)
	}
	if !strings.HasPrefix(err.Error(), "ech: ") {
		t.Fatalf("message %q does not start with the package name", err)
	}
}

func TestParseConfigListAllPrefixes(t *testing.T) {
	lists, _, _ := goTLSLists(t)
	for _, full := range lists {
		for n := 0; n < len(full); n++ {
			if _, err := ParseConfigList(full[:n]); !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrInvalid) {
				t.Fatalf("prefix of %d bytes: error %v, want a typed error", n, err)
			}
		}
	}
}

func TestParseConfigListOnlyUnknownVersions(t *testing.T) {
	in := []byte{0, 8, 0xfe, 0x0c, 0, 0, 0xfe, 0x0e, 0, 0}
	l, err := ParseConfigList(in)
	if err != nil || len(l.Configs) != 0 || len(l.Skipped) != 2 {
		t.Fatalf("got %+v, %v", l, err)
	}
}

func TestParseConfig(t *testing.T) {
	k, _ := GenerateKey(KeyOptions{ConfigID: 9, MaximumNameLength: 42})
	c, err := ParseConfig(k.Config.Raw)
	if err != nil || c.ConfigID != 9 || c.MaximumNameLength != 42 || !bytes.Equal(c.Raw, k.Config.Raw) {
		t.Fatalf("ParseConfig: %+v %v", c, err)
	}
	other := append([]byte{0xfe, 0x0c}, k.Config.Raw[2:]...)
	if _, err := ParseConfig(other); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("other version: %v, want ErrUnsupported", err)
	}
	if _, err := ParseConfig(append(append([]byte(nil), k.Config.Raw...), 0)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("trailing byte: %v, want ErrMalformed", err)
	}
}

func TestValidatePublicNameAccepts(t *testing.T) {
	for _, n := range []string{"public.lab.test", "a", "xn--bcher-kva.example", "lab.123a", "0xg.test", "a-b.c-d", strings.Repeat("a", 63) + ".test"} {
		if err := ValidatePublicName(n); err != nil {
			t.Errorf("%q: %v", n, err)
		}
	}
}

func BenchmarkParseConfigList(b *testing.B) {
	lists, _, _ := goTLSLists(b)
	in := lists[1]
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseConfigList(in); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzParseConfigList(f *testing.F) {
	lists, _, _ := goTLSLists(f)
	for _, l := range lists {
		f.Add(l)
	}
	f.Add(wrapConfig(joinFields(validFields())))
	f.Add([]byte{0, 8, 0xfe, 0x0c, 0, 0, 0xfe, 0x0e, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		l, err := ParseConfigList(in)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		out, err := l.Marshal()
		if err != nil {
			t.Fatalf("parsed list does not marshal: %v", err)
		}
		if !bytes.Equal(out, in) {
			t.Fatalf("round trip differs\n got %x\nwant %x", out, in)
		}
	})
}
