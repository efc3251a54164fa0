package server

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"testing"
	"time"
)

// TestCipherNameIsCryptoTLSName: the cached names are crypto/tls's, for
// every suite it knows and for one it does not.
func TestCipherNameIsCryptoTLSName(t *testing.T) {
	ids := []uint16{0x1234, 0}
	for _, c := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		ids = append(ids, c.ID)
	}
	for _, id := range ids {
		if got, want := cipherName(id), tls.CipherSuiteName(id); got != want {
			t.Errorf("cipherName(%#04x) = %q, want %q", id, got, want)
		}
	}
}

// TestCipherNameAllocates: naming the suite of every logged connection
// allocates nothing (tls.CipherSuiteName builds two lists of suites).
func TestCipherNameAllocates(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { cipherName(tls.TLS_AES_128_GCM_SHA256) }); n != 0 {
		t.Fatalf("%v allocations per cipher name", n)
	}
}

// TestLogLineIsJSONMarshal: a log line is json.Marshal's bytes and a
// newline, HTML-escaping included.
func TestLogLineIsJSONMarshal(t *testing.T) {
	id := uint8(7)
	rec := &ConnRecord{Schema: RecordSchema, Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Mode: "shared",
		OuterSNI: "a<b>&c", ECH: ECHRejected, ConfigID: &id, HandshakeMS: 1.25e-3, Error: "tls: \u2028bad\""}
	var out bytes.Buffer
	l := &recordLog{w: &out}
	l.write(rec)
	l.write(rec)
	want, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, '\n')
	if !bytes.Equal(out.Bytes(), append(append([]byte(nil), want...), want...)) {
		t.Fatalf("log lines\n%s\nwant twice\n%s", out.Bytes(), want)
	}
}
