package client

import (
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/echlab/echlab/ech"
)

// Retry configs are only used after the outer handshake authenticated the
// public name: a server whose certificate does not cover public.lab.test
// gets no retry, the fetch fails as invalid-certificate.
func TestRetryNeedsAuthenticatedPublicName(t *testing.T) {
	l := newLab(t)
	_, stale := newKey(t, 1)
	fresh, _ := newKey(t, 2)
	secretOnly, err := l.ca.Issue("secret.lab.test", []string{"secret.lab.test"}, false)
	must(t, err)
	conf := &tls.Config{Certificates: []tls.Certificate{secretOnly}, EncryptedClientHelloKeys: echKeys(fresh)}
	port := startTLS(t, conf)
	o := echWorld(t, l, port, stale, "h2")
	o.Policy = PolicyFallback // not even fallback: the failure is the certificate
	r, err := Fetch(ctxT(t), "https://secret.lab.test/", o)
	wantClass(t, r, err, ClassCertificate)
	if r.Retried || r.Fallback || r.Status != 0 {
		t.Fatalf("retried=%v fallback=%v status=%d", r.Retried, r.Fallback, r.Status)
	}
}

func TestSelectConfigSkipsUnusable(t *testing.T) {
	good, _ := newKey(t, 2)
	bad := good.Config
	bad.ConfigID = 1
	bad.Extensions = []ech.Extension{{Type: 0xfa00}} // mandatory, unknown
	rawBad, err := bad.Marshal()
	must(t, err)
	list, err := ech.MarshalConfigList(rawBad, good.Config.Raw)
	must(t, err)
	offer, cfg, err := SelectConfig(list)
	must(t, err)
	if cfg.ConfigID != 2 || string(offer[2:]) != string(good.Config.Raw) {
		t.Fatalf("picked config %d", cfg.ConfigID)
	}
	only, err := ech.MarshalConfigList(rawBad)
	must(t, err)
	if _, _, err := SelectConfig(only); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("only unusable configs: %v", err)
	}
	if _, _, err := SelectConfig([]byte{0, 9, 1}); err == nil {
		t.Fatal("malformed list accepted")
	}
}

func TestLoadConfigList(t *testing.T) {
	key, list := newKey(t, 3)
	dir := t.TempDir()
	raw := filepath.Join(dir, "list.bin")
	must(t, os.WriteFile(raw, list, 0o644))
	pemFile := filepath.Join(dir, "ech.pem")
	p, err := ech.MarshalPEM(key)
	must(t, err)
	must(t, os.WriteFile(pemFile, p, 0o600))
	for _, arg := range []string{b64(list), "ech=" + b64(list), raw, pemFile} {
		got, err := LoadConfigList(arg)
		if err != nil || string(got) != string(list) {
			t.Errorf("LoadConfigList(%.30q) = %x, %v", arg, got, err)
		}
	}
	if _, err := LoadConfigList("not-a-file-nor-base64!"); err == nil {
		t.Error("garbage accepted")
	}
}
