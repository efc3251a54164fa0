package ech

import (
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

// TestExpandLabelVectors checks ExpandLabel against published values: the
// "derived" secret of RFC 8448 §3 (a non-empty context) and the QUIC
// Initial secrets and keys of RFC 9001 Appendix A.1 (an empty context).
func TestExpandLabelVectors(t *testing.T) {
	early, _ := hkdf.Extract(sha256.New, make([]byte, 32), nil)
	initial, _ := hkdf.Extract(sha256.New, unhex(t, "8394c8f03e515708"), unhex(t, "38762cf7f55934b34d179ae6a4c80cadccbb7f0a"))
	client := unhex(t, "c00cf151ca5be075ed0ebfb5c80323c42d6b7db67881289af4008f1f6c357aea")
	empty := sha256.Sum256(nil)
	for _, c := range []struct {
		name, label string
		secret, ctx []byte
		n           int
		want        string
	}{
		{"RFC 8448 derived", "derived", early, empty[:], 32, "6f2615a108c702c5678f54fc9dbab69716c076189c48250cebeac3576c3611ba"},
		{"RFC 9001 client in", "client in", initial, nil, 32, hex.EncodeToString(client)},
		{"RFC 9001 server in", "server in", initial, nil, 32, "3c199828fd139efd216c155ad844cc81fb82fa8d7446fa7d78be803acdda951b"},
		{"RFC 9001 quic key", "quic key", client, nil, 16, "1f369613dd76d5467730efcbe3b1a22d"},
		{"RFC 9001 quic iv", "quic iv", client, nil, 12, "fa044b2f42a3fd3b46fb255c"},
		{"RFC 9001 quic hp", "quic hp", client, nil, 16, "9f50449e04a0e810283a1e9933adedd2"},
	} {
		got, err := ExpandLabel(sha256.New, c.secret, c.label, c.ctx, c.n)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if hex.EncodeToString(got) != c.want {
			t.Errorf("%s = %x, want %s", c.name, got, c.want)
		}
	}
}

func TestExpandLabelRejects(t *testing.T) {
	secret := make([]byte, 32)
	for _, c := range []struct {
		name, label string
		ctx         []byte
		n           int
		want        string
	}{
		{"label too long", strings.Repeat("a", 250), nil, 32, "label of 250 bytes"},
		{"context too long", "x", make([]byte, 256), 32, "context of 256 bytes"},
		{"negative length", "x", nil, -1, "length -1"},
		{"beyond 255 blocks", "x", nil, 255*32 + 1, "HKDF-Expand-Label"},
	} {
		_, err := ExpandLabel(sha256.New, secret, c.label, c.ctx, c.n)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "ech: ") {
			t.Errorf("%s: err = %v, want one naming %q", c.name, err, c.want)
		}
	}
	if _, err := ExpandLabel(sha256.New, secret, strings.Repeat("a", 249), make([]byte, 255), 255*32); err != nil {
		t.Errorf("longest label and context: %v", err)
	}
}
