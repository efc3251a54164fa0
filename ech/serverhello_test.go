package ech

import (
	"crypto/sha256"
	"errors"
	"slices"
	"testing"
)

func serverHellos(t testing.TB) map[string][]byte {
	t.Helper()
	return readCaptures(t, "testdata/hello/server", "ServerHellos")
}

func TestParseServerHello(t *testing.T) {
	sh := serverHellos(t)
	hrr, err := ParseServerHelloRecords(sh["go-hrr.bin"])
	if err != nil {
		t.Fatal(err)
	}
	if !hrr.IsHRR || hrr.KeyShareGroup != 0x17 || hrr.KeyShare != nil || len(hrr.ECHConfirmation) != 8 ||
		hrr.SupportedVersion != VersionTLS13 || hrr.CipherSuite != 0x1301 {
		t.Errorf("HRR %+v", hrr)
	}
	if c := hrr.Confirmation(); len(c) != 8 || &c[0] != &hrr.Raw[hrr.ConfirmationStart] {
		t.Errorf("HRR confirmation not at ConfirmationStart")
	}
	s, err := ParseServerHelloRecords(sh["go-serverhello.bin"])
	if err != nil {
		t.Fatal(err)
	}
	if s.IsHRR || s.KeyShareGroup != 0x17 || len(s.KeyShare) != 65 || s.SelectedIdentity != -1 ||
		&s.Confirmation()[0] != &s.Raw[s.ConfirmationStart] || len(s.SessionID) != 32 {
		t.Errorf("ServerHello %+v", s)
	}
}

func TestTruncatedServerHello(t *testing.T) {
	for name, rec := range serverHellos(t) {
		msg, _, err := HandshakeFromRecords(rec)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < len(rec); i++ {
			if _, err := ParseServerHelloRecords(rec[:i]); !errors.Is(err, ErrNeedMore) {
				t.Fatalf("%s: %d-byte prefix: %v", name, i, err)
			}
		}
		for i := 4; i < len(msg); i++ {
			cut := slices.Clone(msg[:i])
			n := i - 4
			cut[1], cut[2], cut[3] = byte(n>>16), byte(n>>8), byte(n)
			got, err := ParseServerHello(cut)
			if err == nil && len(got.Extensions) == 0 {
				continue // TLS 1.2 ServerHellos may omit extensions
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("%s: cut at %d: %v, want a FieldError", name, i, err)
			}
		}
	}
}

func TestServerHelloRejects(t *testing.T) {
	rec := serverHellos(t)["go-serverhello.bin"]
	msg, _, _ := HandshakeFromRecords(rec)
	sh, _ := ParseServerHello(msg)
	mutate := func(typ uint16, data []byte) []byte {
		b := slices.Clone(msg[:sh.Extensions[0].Offset-6]) // up to the extensions length
		exts := slices.Clone(sh.Extensions)
		exts = setExtension(exts, typ, data)
		var body []byte
		for _, e := range exts {
			body = append(body, byte(e.Type>>8), byte(e.Type), byte(len(e.Data)>>8), byte(len(e.Data)))
			body = append(body, e.Data...)
		}
		b = append(b, byte(len(body)>>8), byte(len(body)))
		b = append(b, body...)
		n := len(b) - 4
		b[1], b[2], b[3] = byte(n>>16), byte(n>>8), byte(n)
		return b
	}
	if _, err := ParseServerHello(mutate(ExtSupportedVersions, []byte{3, 4})); err != nil {
		t.Fatalf("rebuilding the unchanged message: %v", err)
	}
	for _, tc := range []struct {
		name  string
		msg   []byte
		field string
	}{
		{"ech in ServerHello", mutate(ExtEncryptedHello, make([]byte, 8)), "encrypted_client_hello"},
		{"long supported_versions", mutate(ExtSupportedVersions, []byte{3, 4, 0}), "supported_versions"},
		{"empty key share", mutate(ExtKeyShare, []byte{0, 0x17, 0, 0}), "key_share"},
		{"short psk", mutate(ExtPreSharedKey, []byte{0}), "pre_shared_key"},
		{"client hello", append([]byte{1}, msg[1:]...), "msg_type"},
	} {
		_, err := ParseServerHello(tc.msg)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%s: %v, want an error on %s", tc.name, err, tc.field)
		}
	}
}

func TestConfirmationErrors(t *testing.T) {
	sh := serverHellos(t)
	ch := testdataHellos(t)["go-tls13.bin"]
	chMsg, _, _ := HandshakeFromRecords(ch)
	shMsg, _, _ := HandshakeFromRecords(sh["go-serverhello.bin"])
	if _, err := AcceptConfirmation(chMsg, shMsg, 0xc02f); !errors.Is(err, ErrUnsupported) {
		t.Errorf("TLS 1.2 suite: %v", err)
	}
	if _, err := AcceptConfirmation(chMsg[:10], shMsg, 0x1301); !errors.Is(err, ErrNeedMore) {
		t.Errorf("truncated ClientHello: %v", err)
	}
	if ok, err := VerifyAccepted(chMsg, shMsg); ok || err != nil {
		t.Errorf("unrelated ClientHello verified: %v %v", ok, err)
	}
	hrrMsg, _, _ := HandshakeFromRecords(sh["go-hrr.bin"])
	if _, err := VerifyAccepted(chMsg, hrrMsg); !errors.Is(err, ErrInvalid) {
		t.Errorf("VerifyAccepted on an HRR: %v", err)
	}
	if _, err := VerifyHRRAccepted(chMsg, shMsg); !errors.Is(err, ErrInvalid) {
		t.Errorf("VerifyHRRAccepted on a ServerHello: %v", err)
	}
	// SHA-384 suite gives a different value from SHA-256.
	a, _ := AcceptConfirmation(chMsg, shMsg, 0x1301)
	b, _ := AcceptConfirmation(chMsg, shMsg, 0x1302)
	if a == b {
		t.Error("the suite's hash is not used")
	}
}

// RFC 8446 §4.1.3: the HelloRetryRequest random is SHA-256("HelloRetryRequest").
func TestIsHelloRetryRequestRandom(t *testing.T) {
	want := sha256.Sum256([]byte("HelloRetryRequest"))
	if !IsHelloRetryRequestRandom(want[:]) {
		t.Fatalf("SHA-256(%q) not recognised", "HelloRetryRequest")
	}
	other := want
	other[31] ^= 1
	for name, b := range map[string][]byte{"flipped": other[:], "short": want[:31], "long": append(want[:], 0), "nil": nil} {
		if IsHelloRetryRequestRandom(b) {
			t.Errorf("%s: recognised as HRR random", name)
		}
	}
}
