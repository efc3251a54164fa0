package ech

import (
	"errors"
	"math"
	"testing"
)

// TestSealOversizePadding: fixed or block padding that pushes the ECH
// payload or the outer ClientHello's extensions past a 2-byte length used
// to panic in cryptobyte; it must be an ErrInvalid FieldError naming the
// field, and sizes just under the bound must still work.
func TestSealOversizePadding(t *testing.T) {
	key := newKey(t, KeyOptions{})
	inner := buildHello(t, helloSpec{name: "secret.lab.test", groups: []uint16{0x1d}, shares: []KeyShare{x25519Share(t)}})
	for _, tc := range []struct {
		name  string
		pad   Padding
		field string // "" means Seal must succeed
	}{
		{"fixed 70000", Padding{Mode: PaddingFixed, Size: 70000}, "encrypted_client_hello.payload"},
		{"block 65536", Padding{Mode: PaddingBlock, Size: 65536}, "encrypted_client_hello.payload"},
		{"fixed 65535", Padding{Mode: PaddingFixed, Size: 65535}, "encrypted_client_hello.payload"},         // + 16-byte AEAD tag
		{"fixed 65519", Padding{Mode: PaddingFixed, Size: 65535 - 16}, "extensions"},                        // payload fits, extensions do not
		{"fixed max int", Padding{Mode: PaddingFixed, Size: math.MaxInt}, "encrypted_client_hello.payload"}, // no huge allocation
		{"block max int", Padding{Mode: PaddingBlock, Size: math.MaxInt}, "encrypted_client_hello.payload"},
		{"fixed 60000", Padding{Mode: PaddingFixed, Size: 60000}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("Seal panicked: %v", r)
				}
			}()
			s, err := Seal(&key.Config, inner, &SealOptions{Padding: tc.pad})
			if tc.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				if o, err := Open(KeyList{key}, s.Outer, nil); err != nil || o.PaddingLen != s.PaddingLen {
					t.Fatalf("Open of a %d-byte padded hello: %v", s.PaddingLen, err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || !errors.Is(err, ErrInvalid) || fe.Field != tc.field {
				t.Fatalf("err = %v, want an ErrInvalid FieldError on %s", err, tc.field)
			}
		})
	}
}

// FuzzSealPadding seals one ClientHelloInner with any padding mode and
// size: Seal must return an error or a ClientHelloOuter that Open turns
// back into the same inner hello with the same padding, never panic.
func FuzzSealPadding(f *testing.F) {
	key := fuzzKey(f)
	inner := buildHello(f, helloSpec{name: "secret.lab.test", alpn: []string{"h2"}, groups: []uint16{0x1d},
		shares: []KeyShare{x25519Share(f)}})
	for _, seed := range []struct {
		mode uint8
		size int64
	}{{0, 0}, {1, 0}, {2, 512}, {2, 70000}, {3, 32}, {3, 65536}, {3, -1}, {2, math.MaxInt64}, {7, 1}} {
		f.Add(seed.mode, seed.size)
	}
	keys := KeyList{key}
	f.Fuzz(func(t *testing.T, mode uint8, size int64) {
		if int64(int(size)) != size {
			t.Skip("size does not fit an int here")
		}
		s, err := Seal(&key.Config, inner, &SealOptions{Padding: Padding{Mode: PaddingMode(mode % 5), Size: int(size)}})
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		o, err := Open(keys, s.Outer, nil)
		if err != nil || o.PaddingLen != s.PaddingLen || string(o.Inner.Raw) != string(s.Inner.Raw) {
			t.Fatalf("padding %d/%d: Open = %v", mode, size, err)
		}
	})
}
