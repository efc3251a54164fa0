package ech

import (
	"bytes"
	"encoding/hex"
	"math/rand/v2"
	"testing"
	"time"
)

// fuzzESNISet is a fixed ESNI key set from a constant seed.
func fuzzESNISet(t testing.TB) *ESNIKeySet {
	return testESNIKeySet(t, ESNIKeyOptions{PaddedLength: 32,
		Now:  func() time.Time { return time.Unix(1_700_000_000, 0) },
		Rand: rand.NewChaCha8([32]byte{'e', 's', 'n', 'i'})})
}

func FuzzParseESNIKeys(f *testing.F) {
	pair, _ := hex.DecodeString(sftcdFF02Pair)
	f.Add(mustB64(f, cloudflareESNI1))
	f.Add(pair)
	f.Add(pair[:81])
	f.Add(fuzzESNISet(f).Keys.Raw)
	f.Add([]byte{0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParseESNIKeys(b)
		if err != nil {
			return
		}
		again, err := k.Marshal()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("parsed ESNIKeys does not re-marshal to its bytes: %v", err)
		}
		_ = k.Validate(time.Unix(1_700_000_000, 0))
		_, _ = k.AddressSet()
		if _, err := k.RecordDigest(TLSAES128GCMSHA256); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzParseClientEncryptedSNI(f *testing.F) {
	set := fuzzESNISet(f)
	random, aad := seq(0, 32), []byte{0, 0}
	s, err := SealESNI(set.Keys, "a.lab.test", random, aad, &ESNISealOptions{Rand: rand.NewChaCha8([32]byte{1})})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(s.ExtData)
	f.Add(s.ExtData[:40])
	f.Add([]byte{0x13, 0x01, 0, 0x1d, 0, 1, 9, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseClientEncryptedSNI(b)
		if err != nil {
			return
		}
		again, err := c.Marshal()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("parsed extension does not re-marshal to its bytes: %v", err)
		}
		o, err := OpenClientEncryptedSNI([]*ESNIKeySet{set}, c, random, aad)
		if err == nil && o.ServerName == "" {
			t.Fatal("opened without a name")
		}
		ch := &ClientHello{Random: random, Extensions: []HelloExtension{
			{Type: ExtKeyShare, Data: aad}, {Type: ExtEncryptedServerName, Data: b}}}
		if v, ok := ObserveESNI(ch); !ok || v.Err != nil || v.EncryptedLen != len(c.EncryptedSNI) {
			t.Fatalf("ObserveESNI disagrees with ParseClientEncryptedSNI: %+v", v)
		}
	})
}

func FuzzParseServerEncryptedSNI(f *testing.F) {
	f.Add(append([]byte{0}, seq(0, 16)...))
	raw := fuzzESNISet(f).Keys.Raw
	f.Add(append([]byte{1, byte(len(raw) >> 8), byte(len(raw))}, raw...))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseServerEncryptedSNI(b)
		if err != nil {
			return
		}
		again, err := s.Marshal()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("does not re-marshal: %v", err)
		}
	})
}

func FuzzDecodeESNIKeysText(f *testing.F) {
	f.Add(cloudflareESNI1)
	f.Add(`_esni.x. 1 IN TXT "` + cloudflareESNI1 + `"`)
	f.Add(`\# 4 ff01 0000`)
	f.Fuzz(func(t *testing.T, s string) {
		if b, err := DecodeESNIKeysText(s); err == nil {
			_, _ = ParseESNIKeysList(b)
		}
	})
}

func BenchmarkESNIGenerateKeys(b *testing.B) {
	for b.Loop() {
		if _, err := GenerateESNIKeys(ESNIKeyOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseESNIKeys(b *testing.B) {
	raw := mustB64(b, cloudflareESNI1)
	for b.Loop() {
		if _, err := ParseESNIKeys(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBuildESNIClientHello(b *testing.B) {
	set := fuzzESNISet(b)
	for b.Loop() {
		if _, err := BuildESNIClientHello(set.Keys, ESNIHelloOptions{ServerName: "secret.lab.test"}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecryptESNI(b *testing.B) {
	set := fuzzESNISet(b)
	h, err := BuildESNIClientHello(set.Keys, ESNIHelloOptions{ServerName: "secret.lab.test"})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := DecryptESNI(set, h.Hello); err != nil {
			b.Fatal(err)
		}
	}
}
