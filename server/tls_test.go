package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/internal/pki"
)

func TestSharedHRRWithECH(t *testing.T) {
	k := newKey(t, 5)
	logBuf := &syncBuffer{}
	s := startServer(t, Config{Keys: NewStaticKeys(k), Log: logBuf, ForceHRR: true})
	c := httpClient(s.Addr(), clientTLS(t, "secret.lab.test", configList(t, k)))
	resp, in := getJSON(t, c, "secret.lab.test")
	if !resp.TLS.ECHAccepted || !resp.TLS.HelloRetryRequest {
		t.Fatalf("client: ECHAccepted=%v HelloRetryRequest=%v", resp.TLS.ECHAccepted, resp.TLS.HelloRetryRequest)
	}
	if !in.HRR || in.ECH != ECHAccepted || in.Group != "CurveP256" || in.InnerSNI != "secret.lab.test" {
		t.Errorf("/api/conn = %+v", in)
	}
	if recs := logBuf.waitRecords(t, 1); len(recs) != 1 || !recs[0].HRR {
		t.Errorf("log = %+v", recs)
	}
}

func TestSharedRejectWithoutRetryConfigs(t *testing.T) {
	k, other := newKey(t, 1), newKey(t, 2)
	keys := NewStaticKeys(k)
	keys[0].SendAsRetry = false
	s := startServer(t, Config{Keys: keys})
	c := httpClient(s.Addr(), clientTLS(t, "secret.lab.test", configList(t, other)))
	_, err := c.Get("https://secret.lab.test/")
	var rej *tls.ECHRejectionError
	if !errors.As(err, &rej) {
		t.Fatalf("err = %v, want ECHRejectionError", err)
	}
	if len(rej.RetryConfigList) != 0 {
		t.Errorf("got retry configs %x, want none", rej.RetryConfigList)
	}
}

func TestBaseline(t *testing.T) {
	logBuf := &syncBuffer{}
	s, err := StartBaseline(Config{CA: testCA(t), Log: logBuf})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := httpClient(s.Addr(), clientTLS(t, "secret.lab.test", nil))
	resp, in := getJSON(t, c, "secret.lab.test")
	if resp.TLS.ECHAccepted || in.ECH != ECHNone || in.Mode != "baseline" || in.OuterSNI != "secret.lab.test" || in.HTTP != "http/2" {
		t.Errorf("baseline /api/conn = %+v", in)
	}
	// An ECH client is refused by a server without keys (no retry configs:
	// the public name's certificate is not what the client asked... it asked
	// for secret.lab.test, so crypto/tls reports the rejection).
	k := newKey(t, 1)
	c = httpClient(s.Addr(), clientTLS(t, "secret.lab.test", configList(t, k)))
	_, err = c.Get("https://secret.lab.test/")
	var rej *tls.ECHRejectionError
	if !errors.As(err, &rej) || len(rej.RetryConfigList) != 0 {
		t.Errorf("ECH client on baseline: err = %v", err)
	}
	recs := logBuf.waitRecords(t, 2)
	if len(recs) != 2 || recs[1].ECH != ECHGrease || recs[1].RetryConfigs {
		t.Errorf("log = %+v", recs)
	}
}

func TestWrongCA(t *testing.T) {
	k := newKey(t, 1)
	s := startServer(t, Config{Keys: NewStaticKeys(k)})
	other, err := pki.NewCA("other CA")
	if err != nil {
		t.Fatal(err)
	}
	cfg := clientTLS(t, "secret.lab.test", configList(t, k))
	cfg.RootCAs = other.Pool()
	_, err = httpClient(s.Addr(), cfg).Get("https://secret.lab.test/")
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Errorf("err = %v, want x509.UnknownAuthorityError", err)
	}
}

func TestMutualTLS(t *testing.T) {
	k := newKey(t, 1)
	logBuf := &syncBuffer{}
	s := startServer(t, Config{Keys: NewStaticKeys(k), RequireClientCert: true, Log: logBuf})
	cert, err := testCA(t).Issue("lab-client", nil, true)
	if err != nil {
		t.Fatal(err)
	}
	cfg := clientTLS(t, "secret.lab.test", configList(t, k))
	cfg.Certificates = []tls.Certificate{cert}
	_, in := getJSON(t, httpClient(s.Addr(), cfg), "secret.lab.test")
	if in.ClientCert != "lab-client" || in.ECH != ECHAccepted {
		t.Errorf("with client cert: %+v", in)
	}
	_, err = httpClient(s.Addr(), clientTLS(t, "secret.lab.test", configList(t, k))).Get("https://secret.lab.test/")
	if err == nil {
		t.Fatal("no client certificate: request succeeded")
	}
	recs := logBuf.waitRecords(t, 2)
	if len(recs) != 2 || recs[0].ClientCert != "lab-client" || recs[0].Error != "" ||
		recs[1].ClientCert != "" || recs[1].Error == "" || recs[1].ECH != ECHAccepted {
		t.Errorf("log = %+v", recs)
	}
}

func TestCloseDoesNotWaitForStalledHandshakes(t *testing.T) {
	s, err := Start(Config{CA: testCA(t), HandshakeTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte{22, 3, 1}) // a partial record header, then silence
	time.Sleep(50 * time.Millisecond)
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close waited for the stalled handshake")
	}
	if _, err := Start(Config{Addr: "nonsense"}); !errors.Is(err, ErrConfig) {
		t.Errorf("bad Addr: err = %v", err)
	}
	if _, err := Start(Config{Names: []string{"bad_name"}}); !errors.Is(err, ErrConfig) {
		t.Errorf("bad name: err = %v", err)
	}
	if _, err := StartSplit(SplitConfig{}); !errors.Is(err, ErrConfig) {
		t.Errorf("split without routes: err = %v", err)
	}
}

func TestUsableKeysSkipsKEMsCryptoTLSLacks(t *testing.T) {
	x448, err := ech.GenerateKey(ech.KeyOptions{ConfigID: 9, KEM: ech.KEMX448HKDFSHA512})
	if err != nil {
		t.Fatal(err)
	}
	k := newKey(t, 1)
	ks := &ech.KeySet{}
	ks.Add(k, true)
	ks.Add(x448, true)
	cfg := clientTLS(t, "secret.lab.test", configList(t, k))
	s := startServer(t, Config{Keys: UsableKeys(ks)})
	if _, in := getJSON(t, httpClient(s.Addr(), cfg), "secret.lab.test"); in.ECH != ECHAccepted {
		t.Errorf("with UsableKeys: %+v", in)
	}
	raw := startServer(t, Config{Keys: ks})
	if _, err := httpClient(raw.Addr(), cfg).Get("https://secret.lab.test/"); err == nil {
		t.Error("a key set with an X448 key given to crypto/tls as is: handshake succeeded")
	}
}
