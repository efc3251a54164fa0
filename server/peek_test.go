package server

import (
	"testing"
)

// TestPeekStopsAfterFirstHello: the peek records the client's bytes only
// until the first ClientHello has been dissected (in the tls.Config
// callbacks), not the rest of the handshake, with and without ECH; the
// facts are those of that ClientHello.
func TestPeekStopsAfterFirstHello(t *testing.T) {
	k := newKey(t, 3)
	c, err := Config{Keys: NewStaticKeys(k), CA: testCA(t)}.populate()
	if err != nil {
		t.Fatal(err)
	}
	certs, err := issueCerts(c.CA, c.PublicName, c.Names)
	if err != nil {
		t.Fatal(err)
	}
	var known idSet
	cfg := tlsConfig(&c, certs, &known, nil)
	for _, tc := range []struct {
		name string
		list []byte
	}{{"ECH", configList(t, k)}, {"no ECH", nil}} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := peekHandshake(t, cfg, clientTLS(t, "secret.lab.test", tc.list))
			if err != nil {
				t.Fatal(err)
			}
			p.mu.Lock()
			recording, n, facts := p.recording, len(p.buf), p.facts
			p.mu.Unlock()
			if recording || n != 0 || facts == nil {
				t.Fatalf("after the handshake: recording %v, %d bytes kept, facts %v", recording, n, facts)
			}
			d := p.hello()
			wantSNI := "secret.lab.test"
			if tc.list != nil {
				wantSNI = "public.lab.test"
			}
			if d.sni != wantSNI || d.hasECH != (tc.list != nil) || len(d.random) != 32 ||
				(d.hasECH && (d.configID != 3 || d.suite != "HKDF-SHA256/AES-128-GCM")) {
				t.Fatalf("facts %+v", d)
			}
		})
	}
}
