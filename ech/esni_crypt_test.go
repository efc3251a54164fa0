package ech

import (
	"bufio"
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// readKAT reads testdata/esni/kat.txt, written by testdata/esni/kat.py
// (Python cryptography, from the draft text; not from this package).
func readKAT(t *testing.T) map[string][]byte {
	t.Helper()
	f, err := os.Open("testdata/esni/kat.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]byte{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		if out[k], err = hex.DecodeString(v); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func seq(from, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(from + i)
	}
	return b
}

// TestESNIKnownAnswer checks ESNIKeys, checksum, record_digest, the key
// schedule and AEAD against the independent Python vector.
func TestESNIKnownAnswer(t *testing.T) {
	kat := readKAT(t)
	serverPriv, err := ecdh.X25519().NewPrivateKey(seq(1, 32))
	if err != nil {
		t.Fatal(err)
	}
	k := &ESNIKeys{Version: ESNIVersionDraft03, PublicName: "public.lab.test",
		Keys:         []KeyShare{{Group: GroupX25519, Data: serverPriv.PublicKey().Bytes()}},
		CipherSuites: []uint16{TLSAES128GCMSHA256}, PaddedLength: 260,
		NotBefore: 1700000000, NotAfter: 1700086400}
	if err := k.SetChecksum(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k.Raw, kat["esni_keys"]) {
		t.Fatalf("ESNIKeys\n got %x\nwant %x", k.Raw, kat["esni_keys"])
	}
	if d, _ := k.RecordDigest(TLSAES128GCMSHA256); !bytes.Equal(d, kat["record_digest"]) {
		t.Fatalf("record_digest %x", d)
	}
	random := bytes.NewReader(append(seq(0x41, 32), seq(0xa0, 16)...)) // ephemeral key, nonce
	sealed, err := SealESNI(k, "secret.lab.test", seq(0x80, 32), kat["aad"], &ESNISealOptions{Rand: random})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sealed.ExtData, kat["extension"]) {
		t.Fatalf("extension\n got %x\nwant %x", sealed.ExtData, kat["extension"])
	}
	set := &ESNIKeySet{Keys: k, Private: []*ecdh.PrivateKey{serverPriv}}
	o, err := OpenClientEncryptedSNI([]*ESNIKeySet{set}, sealed.Ext, seq(0x80, 32), kat["aad"])
	if err != nil || o.ServerName != "secret.lab.test" || !bytes.Equal(o.Nonce[:], seq(0xa0, 16)) {
		t.Fatalf("open: %+v, %v", o, err)
	}
}

func TestClientEncryptedSNICodec(t *testing.T) {
	kat := readKAT(t)
	c, err := ParseClientEncryptedSNI(kat["extension"])
	if err != nil {
		t.Fatal(err)
	}
	if c.Suite != TLSAES128GCMSHA256 || c.KeyShare.Group != GroupX25519 || len(c.RecordDigest) != 32 ||
		len(c.EncryptedSNI) != 16+260+16 {
		t.Fatalf("%+v", c)
	}
	again, _ := c.Marshal()
	if !bytes.Equal(again, kat["extension"]) {
		t.Fatal("not byte-exact")
	}
	ext := kat["extension"]
	cases := map[string]struct {
		in    []byte
		field string
	}{
		"empty":                 {nil, "suite"},
		"suite only":            {ext[:2], "key_share"},
		"empty key_exchange":    {[]byte{0x13, 1, 0, 0x1d, 0, 0}, "key_share"},
		"no record_digest":      {ext[:38], "record_digest"},
		"short encrypted_sni":   {ext[:len(ext)-1], "encrypted_sni"},
		"trailing byte":         {append(append([]byte(nil), ext...), 0), "encrypted_sni"},
		"digest length overrun": {append(append([]byte(nil), ext[:38]...), 0xff, 0xff), "record_digest"},
	}
	for name, c := range cases {
		_, err := ParseClientEncryptedSNI(c.in)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%s: %v, want field %s", name, err, c.field)
		}
	}
	for n := range len(ext) {
		if _, err := ParseClientEncryptedSNI(ext[:n]); err == nil {
			t.Fatalf("truncated to %d parsed", n)
		}
	}
}

func TestESNISealOpenSuitesGroups(t *testing.T) {
	for _, g := range []uint16{GroupX25519, GroupP256, GroupP384, GroupP521} {
		for _, cs := range []uint16{TLSAES128GCMSHA256, TLSAES256GCMSHA384, TLSChaCha20Poly1305SHA256} {
			set := testESNIKeySet(t, ESNIKeyOptions{Groups: []uint16{g}, CipherSuites: []uint16{cs}, PaddedLength: 100})
			random, aad := seq(7, 32), []byte{0, 4, 0, 0x1d, 0, 0}
			s, err := SealESNI(set.Keys, "secret.lab.test", random, aad, nil)
			if err != nil {
				t.Fatal(err)
			}
			o, err := OpenClientEncryptedSNI([]*ESNIKeySet{set}, s.Ext, random, aad)
			if err != nil || o.ServerName != "secret.lab.test" || o.Nonce != s.Nonce {
				t.Fatalf("%s %#x: %+v %v", GroupName(g), cs, o, err)
			}
		}
	}
}

func TestESNIOpenRejectsTampering(t *testing.T) {
	set := testESNIKeySet(t, ESNIKeyOptions{CipherSuites: []uint16{0x1301, 0x1303}})
	other := testESNIKeySet(t, ESNIKeyOptions{})
	random, aad := seq(1, 32), []byte{0, 6, 0, 0x1d, 0, 2, 1, 2}
	s, err := SealESNI(set.Keys, "secret.lab.test", random, aad, nil)
	if err != nil {
		t.Fatal(err)
	}
	mod := func(f func(c *ClientEncryptedSNI)) *ClientEncryptedSNI {
		c, _ := ParseClientEncryptedSNI(s.ExtData)
		f(c)
		return c
	}
	flipAAD := append([]byte(nil), aad...)
	flipAAD[len(flipAAD)-1] ^= 1
	cases := []struct {
		name         string
		sets         []*ESNIKeySet
		ext          *ClientEncryptedSNI
		random, aad  []byte
		want         error
		alsoSentinel error
	}{
		{"ok", []*ESNIKeySet{other, set}, s.Ext, random, aad, nil, nil},
		{"keys of another server", []*ESNIKeySet{other}, s.Ext, random, aad, ErrESNIDigest, ErrInvalid},
		{"wrong record_digest", []*ESNIKeySet{set}, mod(func(c *ClientEncryptedSNI) { c.RecordDigest[0] ^= 1 }), random, aad, ErrESNIDigest, nil},
		{"modified AAD (key share)", []*ESNIKeySet{set}, s.Ext, random, flipAAD, ErrDecrypt, nil},
		{"modified client random", []*ESNIKeySet{set}, s.Ext, seq(2, 32), aad, ErrDecrypt, nil},
		{"modified ciphertext", []*ESNIKeySet{set}, mod(func(c *ClientEncryptedSNI) { c.EncryptedSNI[20] ^= 1 }), random, aad, ErrDecrypt, nil},
		{"modified tag", []*ESNIKeySet{set}, mod(func(c *ClientEncryptedSNI) { c.EncryptedSNI[len(c.EncryptedSNI)-1] ^= 1 }), random, aad, ErrDecrypt, nil},
		{"modified client key share", []*ESNIKeySet{set}, mod(func(c *ClientEncryptedSNI) { c.KeyShare.Data[5] ^= 1 }), random, aad, ErrDecrypt, nil},
		{"other suite, same keys", []*ESNIKeySet{set}, mod(func(c *ClientEncryptedSNI) {
			c.Suite = 0x1303
			c.RecordDigest, _ = set.Keys.RecordDigest(0x1303)
		}), random, aad, ErrDecrypt, nil},
		{"unknown suite", []*ESNIKeySet{set}, mod(func(c *ClientEncryptedSNI) { c.Suite = 0x1304 }), random, aad, ErrUnsupported, nil},
		{"group not in keys", []*ESNIKeySet{set}, mod(func(c *ClientEncryptedSNI) { c.KeyShare.Group = GroupP256 }), random, aad, ErrInvalid, nil},
		{"length not padded_length", []*ESNIKeySet{set}, mod(func(c *ClientEncryptedSNI) { c.EncryptedSNI = c.EncryptedSNI[1:] }), random, aad, ErrInvalid, nil},
	}
	for _, c := range cases {
		o, err := OpenClientEncryptedSNI(c.sets, c.ext, c.random, c.aad)
		switch {
		case c.want == nil && (err != nil || o.ServerName != "secret.lab.test" || o.Set != set):
			t.Errorf("%s: %+v, %v", c.name, o, err)
		case c.want != nil && !errors.Is(err, c.want), c.alsoSentinel != nil && !errors.Is(err, c.alsoSentinel):
			t.Errorf("%s: err %v, want %v", c.name, err, c.want)
		}
	}
}

// TestESNIBadPadding encrypts ClientESNIInner values that break the
// padding rules with the real key schedule: the server must refuse them
// after a successful decryption.
func TestESNIBadPadding(t *testing.T) {
	set := testESNIKeySet(t, ESNIKeyOptions{PaddedLength: 32})
	random, aad := seq(3, 32), []byte{0, 0}
	sni, _ := MarshalServerNameList("a.lab.test")
	cases := map[string][]byte{
		"nonzero padding":       append(append(seq(0, 16), sni...), append(make([]byte, 32-len(sni)-1), 1)...),
		"list overruns padding": append(seq(0, 16), append([]byte{0, 40}, make([]byte, 30)...)...),
		"empty host_name":       append(seq(0, 16), append([]byte{0, 3, 0, 0, 0}, make([]byte, 27)...)...),
	}
	for name, inner := range cases {
		priv, _ := ecdh.X25519().GenerateKey(rand.Reader)
		digest, _ := set.Keys.RecordDigest(0x1301)
		ext := &ClientEncryptedSNI{Suite: 0x1301, RecordDigest: digest,
			KeyShare: KeyShare{Group: GroupX25519, Data: priv.PublicKey().Bytes()}}
		z, _ := esniECDH(priv, set.Keys.Keys[0])
		cs, _ := esniAEAD(0x1301)
		aead, iv, _ := esniKeyIV(cs, z, ext, random)
		ext.EncryptedSNI = aead.Seal(nil, iv, inner, aad)
		_, err := OpenClientEncryptedSNI([]*ESNIKeySet{set}, ext, random, aad)
		if name == "nonzero padding" && !errors.Is(err, ErrESNIPadding) || err == nil || errors.Is(err, ErrDecrypt) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestSealESNIRefuses(t *testing.T) {
	set := testESNIKeySet(t, ESNIKeyOptions{PaddedLength: 16})
	if _, err := SealESNI(set.Keys, "a-name-longer-than-sixteen.lab.test", seq(0, 32), nil, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("name longer than padded_length: %v", err)
	}
	if _, err := SealESNI(set.Keys, "a.test", seq(0, 31), nil, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("short random: %v", err)
	}
	if _, err := SealESNI(set.Keys, "a.test", seq(0, 32), nil, &ESNISealOptions{Group: GroupP256}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("group not offered: %v", err)
	}
	if _, err := SealESNI(set.Keys, "a.test", seq(0, 32), nil, &ESNISealOptions{Suite: 0x1302}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("suite not offered: %v", err)
	}
}

func TestServerEncryptedSNICodec(t *testing.T) {
	set := testESNIKeySet(t, ESNIKeyOptions{Now: func() time.Time { return time.Unix(1e9, 0) }})
	for _, s := range []*ServerEncryptedSNI{
		{ResponseType: ESNIAccept, Nonce: [16]byte(seq(9, 16))},
		{ResponseType: ESNIRetryRequest, RetryKeys: [][]byte{set.Keys.Raw, mustB64(t, cloudflareESNI1)}},
	} {
		b, err := s.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseServerEncryptedSNI(b)
		if err != nil || got.ResponseType != s.ResponseType || got.Nonce != s.Nonce || len(got.RetryKeys) != len(s.RetryKeys) {
			t.Fatalf("%+v %v", got, err)
		}
		again, _ := got.Marshal()
		if !bytes.Equal(again, b) {
			t.Fatal("not byte-exact")
		}
	}
	for _, bad := range [][]byte{nil, {0}, {0, 1}, {1}, {1, 0, 0}, {1, 0, 2, 0xff, 0x01}, {2}} {
		if _, err := ParseServerEncryptedSNI(bad); err == nil {
			t.Errorf("%x parsed", bad)
		}
	}
}
