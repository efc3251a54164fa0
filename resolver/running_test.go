package resolver

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/internal/pki"
	"github.com/miekg/dns"
)

// runningLab is a resolver started by Start from a Config with every
// transport on, its certificate from PEM files, the key set "main"
// published on secret.lab.test and used by the encrypted listeners for
// their own ECH.
type runningLab struct {
	r      *Running
	dir    string // the key set directory
	ks     *ech.KeySet
	ca     *pki.CA
	client map[string]string // scheme → URL
}

func startRunningLab(t *testing.T) *runningLab {
	t.Helper()
	dir, ks := newKeySetDir(t)
	ca, err := pki.NewCA("running test CA")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue("resolver.lab.test", []string{"resolver.lab.test", "127.0.0.1", "public.lab.test"}, false)
	if err != nil {
		t.Fatal(err)
	}
	certDir := t.TempDir()
	if err := pki.WriteCertificate(certDir, "resolver", cert); err != nil {
		t.Fatal(err)
	}
	free := "127.0.0.1:0"
	r := startResolver(t, func(c *Config) {
		c.KeySets = map[string]string{"main": dir}
		c.Publish = []PublishRule{{Name: "secret.lab.test.", KeySet: "main", ALPN: []string{"h2"}}}
		c.PollInterval = Duration(20 * time.Millisecond)
		c.Listen = Listen{UDP: free, TCP: free, DoT: free, DoH: free, DoH3: free, DoQ: free}
		c.TLS = TLSFiles{CertFile: filepath.Join(certDir, "resolver.crt"), KeyFile: filepath.Join(certDir, "resolver.key"),
			ECHKeySet: "main"}
	})
	l := &runningLab{r: r, dir: dir, ks: ks, ca: ca, client: map[string]string{}}
	for _, a := range r.Addrs() {
		l.client[strings.SplitN(a.URL, "://", 2)[0]] = a.URL
	}
	if len(l.client) != 6 {
		t.Fatalf("listeners %v, want the six transports", r.Addrs())
	}
	return l
}

// ask queries secret.lab.test HTTPS and lab.test SOA through the stub
// client for url, offering ECH with echList when it is not nil.
func (l *runningLab) ask(t *testing.T, url string, echList []byte) (published []byte, serial uint32, tm Timing) {
	t.Helper()
	c, err := NewClient(url, ClientOptions{RootCAs: l.ca.Pool(), ServerName: "resolver.lab.test",
		ECHConfigList: echList, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	resp, tm, err := ExchangeTimed(context.Background(), c, query("secret.lab.test.", dns.TypeHTTPS, 0x1234))
	if err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	if !resp.Authoritative || len(resp.Answer) != 1 {
		t.Fatalf("%s: %v", url, resp)
	}
	h, ok := resp.Answer[0].(*dns.HTTPS)
	if !ok {
		t.Fatalf("%s: answer %T", url, resp.Answer[0])
	}
	soa, err := c.Exchange(context.Background(), query("lab.test.", dns.TypeSOA, 0x4321))
	if err != nil || len(soa.Answer) != 1 {
		t.Fatalf("%s: SOA %v %v", url, soa, err)
	}
	return echParam(h), soa.Answer[0].(*dns.SOA).Serial, tm
}

// TestStubClientRotationOverSixTransports: our stub client over udp, tcp,
// tls, https, h3 and quic against a resolver started from a Config (TLS
// from certificate files) reads the key set's ech=; after a rotation every
// transport serves the new ech= and a larger SOA serial.
func TestStubClientRotationOverSixTransports(t *testing.T) {
	l := startRunningLab(t)
	before := configList(t, l.ks)
	var serial uint32
	for scheme, url := range l.client {
		got, s, _ := l.ask(t, url, nil)
		if !bytes.Equal(got, before) {
			t.Fatalf("%s: ech= %x, want the key set's %x", scheme, got, before)
		}
		if serial != 0 && s != serial {
			t.Fatalf("%s: serial %d, others %d", scheme, s, serial)
		}
		serial = s
	}

	if _, err := l.ks.Rotate(ech.KeyOptions{}, time.Hour, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := ech.SaveKeySet(l.dir, l.ks); err != nil {
		t.Fatal(err)
	}
	after := configList(t, l.ks)
	l.waitPublished(t, after)
	for scheme, url := range l.client {
		got, s, _ := l.ask(t, url, nil)
		if !bytes.Equal(got, after) || s != serial+1 {
			t.Errorf("%s after rotation: ech= %x serial %d, want %x and %d", scheme, got, s, after, serial+1)
		}
	}
}

// waitPublished waits until the resolver publishes want for
// secret.lab.test (asked over TCP: an X-Wing config does not fit in UDP).
func (l *runningLab) waitPublished(t *testing.T, want []byte) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if got, _, _ := l.ask(t, l.client["tcp"], nil); bytes.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("rotation not published within 10 s")
		}
	}
}

// TestListenersOwnECH: with TLS.ECHKeySet the DoT, DoH, DoH3 and DoQ
// listeners accept ECH to the key set they publish, and follow its
// rotation: the new config is accepted and the retired one still is during
// its grace period.
func TestListenersOwnECH(t *testing.T) {
	l := startRunningLab(t)
	old := configList(t, l.ks)
	encrypted := []string{"tls", "https", "h3", "quic"}
	for _, scheme := range encrypted {
		if _, _, tm := l.ask(t, l.client[scheme], old); !tm.ECHAccepted {
			t.Errorf("%s: ECH not accepted", scheme)
		}
	}
	if _, err := l.ks.Rotate(ech.KeyOptions{KEM: ech.KEMXWing}, time.Hour, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := ech.SaveKeySet(l.dir, l.ks); err != nil {
		t.Fatal(err)
	}
	newList := configList(t, l.ks)
	l.waitPublished(t, newList)
	for _, scheme := range encrypted {
		for name, list := range map[string][]byte{"new": newList, "retired": old} {
			if _, _, tm := l.ask(t, l.client[scheme], list); !tm.ECHAccepted {
				t.Errorf("%s with the %s config: ECH not accepted", scheme, name)
			}
		}
	}
	// A config for a key the listeners do not hold is rejected, and the
	// retry configs are the published list.
	stranger, _ := ech.GenerateKey(ech.KeyOptions{ConfigID: 200})
	strangerList, _ := ech.MarshalConfigList(stranger.Config.Raw)
	c, err := NewClient(l.client["tls"], ClientOptions{RootCAs: l.ca.Pool(), ServerName: "resolver.lab.test",
		ECHConfigList: strangerList, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Exchange(context.Background(), query("secret.lab.test.", dns.TypeA, 1))
	var rej *tls.ECHRejectionError
	if !errors.As(err, &rej) || !bytes.Equal(rej.RetryConfigList, newList) {
		t.Errorf("stranger's config: %v, want an ECH rejection with the published list as retry configs", err)
	}
}

// TestListenersOwnECHCertificate: a certificate issued by the lab CA
// covers the public_name of the listeners' ECH keys, so a client whose
// config is stale gets the retry configs instead of a certificate error.
func TestListenersOwnECHCertificate(t *testing.T) {
	dir, ks := newKeySetDir(t)
	caDir := t.TempDir()
	r := startResolver(t, func(c *Config) {
		c.KeySets = map[string]string{"main": dir}
		c.Listen.DoT = "127.0.0.1:0"
		c.TLS = TLSFiles{CADir: caDir, ECHKeySet: "main"}
	})
	pool, err := pki.LoadPool(r.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	stranger, _ := ech.GenerateKey(ech.KeyOptions{ConfigID: 200})
	strangerList, _ := ech.MarshalConfigList(stranger.Config.Raw)
	c, err := NewClient("tls://"+r.Addr(TransportDoT).String(), ClientOptions{RootCAs: pool,
		ServerName: "resolver.lab.test", ECHConfigList: strangerList, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Exchange(context.Background(), query("secret.lab.test.", dns.TypeA, 1))
	var rej *tls.ECHRejectionError
	if !errors.As(err, &rej) || !bytes.Equal(rej.RetryConfigList, configList(t, ks)) {
		t.Errorf("%v, want an ECH rejection carrying the key set as retry configs", err)
	}
}

// TestListenersOwnECHMisconfigured: an unknown key set, or one whose KEM
// crypto/tls does not implement, stops the start with a clear message.
func TestListenersOwnECHMisconfigured(t *testing.T) {
	dir, _ := newKeySetDir(t)
	x448 := t.TempDir()
	var ks ech.KeySet
	if _, err := ks.Rotate(ech.KeyOptions{KEM: ech.KEMX448HKDFSHA512}, time.Hour, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := ech.SaveKeySet(x448, &ks); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, keySet, want string }{
		{"unknown key set", "nope", `unknown key set "nope"`},
		{"KEM crypto/tls lacks", "x448", "kem_id"},
	} {
		cfg := Config{Zones: testZoneFiles, KeySets: map[string]string{"main": dir, "x448": x448},
			Listen: Listen{DoT: "127.0.0.1:0"}, TLS: TLSFiles{CADir: t.TempDir(), ECHKeySet: tc.keySet}}
		r, err := Start(cfg)
		if err == nil {
			r.Close()
			t.Fatalf("%s: started", tc.name)
		}
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrConfig saying %q", tc.name, err, tc.want)
		}
	}
}
