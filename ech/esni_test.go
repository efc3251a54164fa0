package ech

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Independent ESNIKeys vectors. The 0xff01 values are Cloudflare's, as
// served at _esni.www.cloudflare.com in November 2018 and recorded in
// sftcd/openssl esnistuff/doit.sh and testclient.sh. The 0xff02 pair was
// made by sftcd's mk_esnikeys (draft-03), recorded in an esnistuff test
// script. Their checksums were computed by those implementations.
var (
	cloudflareESNI1 = "/wEU528gACQAHQAguwSAYz57kzOUzDXCAZ7aBJLWPrQwvSuNsRZbi7JzqkYAAhMBAQQAAAAAW/E4IAAAAABb+SEgAAA="
	cloudflareESNI2 = "/wHHBBOoACQAHQAg4YSfjSyJPNr1z3F8KqzBNBnMejim0mJZaPmria3XsicAAhMBAQQAAAAAW9pQEAAAAABb4jkQAAA="
	sftcdFF02Pair   = "FF02FF93090D000B6578616D706C652E636F6D0024001D00202857EF701013510D270E531232C40A09226A83391919F4ED3F6B3D08547A7F68000213010104000000005C93BA56000000005C9CF4D60000" +
		"FF027CE3FD9C000B6578616D706C652E6E65740024001D00208C48CF4B00BAAF1191C8B882CFA43DC7F45796C7A0ADC9EB6329BE25B9464235000213010104000000005C9588C7000000005C9EC3470000"
)

func mustB64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseESNIKeysVectors(t *testing.T) {
	pair, _ := hex.DecodeString(sftcdFF02Pair)
	list, err := ParseESNIKeysList(pair)
	if err != nil || len(list) != 2 {
		t.Fatalf("ParseESNIKeysList: %d, %v", len(list), err)
	}
	cases := []struct {
		name      string
		raw       []byte
		version   uint16
		public    string
		notBefore uint64
	}{
		{"cloudflare-2018-11-21", mustB64(t, cloudflareESNI1), ESNIVersionDraft02, "", 0x5bf13820},
		{"cloudflare-2018-11-01", mustB64(t, cloudflareESNI2), ESNIVersionDraft02, "", 0x5bda5010},
		{"sftcd-example.com", list[0].Raw, ESNIVersionDraft03, "example.com", 0x5c93ba56},
		{"sftcd-example.net", list[1].Raw, ESNIVersionDraft03, "example.net", 0x5c9588c7},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k, err := ParseESNIKeys(c.raw)
			if err != nil {
				t.Fatal(err)
			}
			if k.Version != c.version || k.PublicName != c.public || k.NotBefore != c.notBefore ||
				k.PaddedLength != 260 || len(k.Keys) != 1 || k.Keys[0].Group != GroupX25519 ||
				len(k.Keys[0].Data) != 32 || len(k.CipherSuites) != 1 || k.CipherSuites[0] != TLSAES128GCMSHA256 {
				t.Fatalf("fields: %+v", k)
			}
			if err := k.CheckChecksum(); err != nil {
				t.Fatalf("checksum of an independent implementation rejected: %v", err)
			}
			inside := k.NotBeforeTime().Add(time.Hour)
			if err := k.Validate(inside); err != nil {
				t.Fatal(err)
			}
			if err := k.Validate(time.Now()); !errors.Is(err, ErrESNIExpired) {
				t.Fatalf("2018/2019 keys valid today? %v", err)
			}
			sum, _ := k.ComputeChecksum()
			again, err := k.Marshal()
			if err != nil || !bytes.Equal(again, c.raw) || sum != k.Checksum {
				t.Fatalf("not byte-exact: %v\n%x\n%x", err, again, c.raw)
			}
		})
	}
}

func TestDecodeESNIKeysText(t *testing.T) {
	raw := mustB64(t, cloudflareESNI1)
	h := hex.EncodeToString(raw)
	for _, in := range []string{
		cloudflareESNI1,
		`"` + cloudflareESNI1 + `"`,
		`_esni.www.cloudflare.com. 3600 IN TXT "` + cloudflareESNI1[:20] + `" "` + cloudflareESNI1[20:] + `"`,
		"_esni.www.cloudflare.com. 3600 IN TXT " + cloudflareESNI1,
		base64.RawURLEncoding.EncodeToString(raw),
		h,
		`example.com. 60 IN TYPE65439 \# 68 ` + h[:40] + " " + h[40:],
	} {
		got, err := DecodeESNIKeysText(in)
		if err != nil || !bytes.Equal(got, raw) {
			t.Errorf("DecodeESNIKeysText(%q) = %x, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "not base64!", `\#`, "@@"} {
		if b, err := DecodeESNIKeysText(in); err == nil {
			t.Errorf("DecodeESNIKeysText(%q) = %x, want error", in, b)
		}
	}
}

func testESNIKeySet(t testing.TB, o ESNIKeyOptions) *ESNIKeySet {
	t.Helper()
	s, err := GenerateESNIKeys(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestGenerateESNIKeysRoundTrip(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	addrs := []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")}
	for _, v := range []uint16{ESNIVersionDraft02, ESNIVersionDraft03} {
		s := testESNIKeySet(t, ESNIKeyOptions{Version: v, Groups: []uint16{GroupX25519, GroupP256},
			CipherSuites: []uint16{0x1301, 0x1302, 0x1303}, PaddedLength: 64, Valid: time.Hour,
			AddressSet: addrs, Now: func() time.Time { return now }})
		k, err := ParseESNIKeys(s.Keys.Raw)
		if err != nil {
			t.Fatal(err)
		}
		if err := k.Validate(now.Add(30 * time.Minute)); err != nil {
			t.Fatalf("version %#x: %v", v, err)
		}
		got, err := k.AddressSet()
		if err != nil || len(got) != 2 || got[0] != addrs[0] || got[1] != addrs[1] {
			t.Fatalf("address_set %v, %v", got, err)
		}
		again, _ := k.Marshal()
		if !bytes.Equal(again, s.Keys.Raw) || k.NotAfterTime() != now.Add(time.Hour) {
			t.Fatal("round trip not byte-exact")
		}
		if (v == ESNIVersionDraft03) != (k.PublicName == "public.lab.test") {
			t.Fatalf("public_name %q for version %#x", k.PublicName, v)
		}
		if err := s.Check(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestESNIKeysValidateRejects(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	base := testESNIKeySet(t, ESNIKeyOptions{Now: func() time.Time { return now }, Valid: time.Hour}).Keys
	tampered := func(f func(k *ESNIKeys)) *ESNIKeys {
		k, _ := ParseESNIKeys(base.Raw)
		f(k)
		return k
	}
	cases := []struct {
		name string
		k    *ESNIKeys
		at   time.Time
		want error
	}{
		{"ok", base, now, nil},
		{"flipped padded_length", tampered(func(k *ESNIKeys) { k.PaddedLength++; k.Marshal() }), now, ErrESNIChecksum},
		{"flipped key byte", tampered(func(k *ESNIKeys) { k.Raw[len(k.Raw)-40] ^= 1 }), now, ErrESNIChecksum},
		{"flipped checksum", tampered(func(k *ESNIKeys) { k.Raw[3] ^= 0x80 }), now, ErrESNIChecksum},
		{"not yet valid", base, now.Add(-time.Second), ErrESNIExpired},
		{"expired", base, now.Add(time.Hour + time.Second), ErrESNIExpired},
		{"unknown mandatory extension", tampered(func(k *ESNIKeys) {
			k.Extensions = []Extension{{Type: 0x8123}}
			k.SetChecksum()
		}), now, ErrUnsupported},
		{"unknown optional extension", tampered(func(k *ESNIKeys) {
			k.Extensions = []Extension{{Type: 0x0123, Data: []byte{1}}}
			k.SetChecksum()
		}), now, nil},
		{"bad address_set", tampered(func(k *ESNIKeys) {
			k.Extensions = []Extension{{Type: ESNIExtAddressSet, Data: []byte{0, 2, 5, 1}}}
			k.SetChecksum()
		}), now, ErrInvalid},
		{"duplicate group", tampered(func(k *ESNIKeys) { k.Keys = append(k.Keys, k.Keys[0]); k.SetChecksum() }), now, ErrInvalid},
	}
	for _, c := range cases {
		err := c.k.Validate(c.at)
		if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: Validate = %v, want %v", c.name, err, c.want)
		}
		if errors.Is(err, ErrESNIChecksum) && !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: ErrESNIChecksum does not match ErrInvalid", c.name)
		}
	}
}

func TestParseESNIKeysMalformed(t *testing.T) {
	good := mustB64(t, cloudflareESNI1)
	hexCase := func(s string) []byte { b, _ := hex.DecodeString(s); return b }
	cases := []struct {
		name  string
		in    []byte
		field string
		want  error
	}{
		{"empty", nil, "version", ErrMalformed},
		{"unknown version", hexCase("fe0d00000000"), "version", ErrUnsupported},
		{"short checksum", hexCase("ff0100"), "checksum", ErrMalformed},
		{"empty public_name", hexCase("ff02000000000000"), "public_name", ErrMalformed},
		{"keys shorter than 4", hexCase("ff01000000000003001d00"), "keys", ErrMalformed},
		{"key_exchange empty", hexCase("ff01000000000004001d0000"), "keys", ErrMalformed},
		{"odd cipher_suites", append(good[:44:44], 0, 3, 0x13, 1, 1), "cipher_suites", ErrMalformed},
		{"trailing byte", append(append([]byte(nil), good...), 0), "extensions", ErrInvalid},
		{"extension overruns", append(good[:len(good)-2:len(good)-2], 0, 5, 0, 1, 0, 9), "extensions", ErrMalformed},
	}
	for _, c := range cases {
		_, err := ParseESNIKeys(c.in)
		var fe *FieldError
		if !errors.Is(err, c.want) || !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%s: err %v, want field %s and %v", c.name, err, c.field, c.want)
		}
	}
	for n := range len(good) { // every truncation fails cleanly
		if _, err := ParseESNIKeys(good[:n]); err == nil {
			t.Fatalf("truncated to %d bytes parsed", n)
		}
	}
}

func TestSaveLoadESNIKeys(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "esni")
	s := testESNIKeySet(t, ESNIKeyOptions{Groups: []uint16{GroupX25519, GroupP256, GroupP384, GroupP521}})
	if err := SaveESNIKeys(dir, s); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(filepath.Join(dir, ESNIKeyFile))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v", info.Mode(), err)
	}
	txt, _ := os.ReadFile(filepath.Join(dir, ESNITXTFile))
	if string(txt) != s.TXT()+"\n" {
		t.Fatalf("esni.txt %q", txt)
	}
	got, err := LoadESNIKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Keys.Raw, s.Keys.Raw) || len(got.Private) != 4 {
		t.Fatal("loaded set differs")
	}
	for i := range s.Private {
		if !s.Private[i].Equal(got.Private[i]) {
			t.Fatalf("private key %d differs", i)
		}
	}
	// A PEM whose private key belongs to another set is refused.
	other := testESNIKeySet(t, ESNIKeyOptions{})
	pemBytes, _ := os.ReadFile(filepath.Join(dir, ESNIKeyFile))
	mixed := testESNIKeySet(t, ESNIKeyOptions{})
	mixed.Private = other.Private
	if err := SaveESNIKeys(t.TempDir(), mixed); !errors.Is(err, ErrInvalid) {
		t.Fatalf("saving mismatched keys: %v", err)
	}
	if _, err := ParseESNIKeyPEM(pemBytes[:len(pemBytes)/2]); err == nil {
		t.Fatal("truncated PEM loaded")
	}
}
