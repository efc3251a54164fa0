package client

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/echlab/echlab/internal/pki"
	"github.com/echlab/echlab/internal/testutil"
)

func wantClass(t *testing.T, r *Result, err error, class Class) *Error {
	t.Helper()
	var ce *Error
	if !errors.As(err, &ce) || ce.Class != class {
		t.Fatalf("err = %v, want class %s", err, class)
	}
	if r == nil || r.ErrorClass != class || r.Error == "" {
		t.Fatalf("result error class %q (%q), want %s", r.ErrorClass, r.Error, class)
	}
	return ce
}

func TestWrongCAIsInvalidCertificate(t *testing.T) {
	l := newLab(t)
	key, list := newKey(t, 1)
	port := startTLS(t, l.serverTLS(echKeys(key)))
	other, err := pki.NewCA("someone else")
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []Mode{ModeECH, ModeBaseline} {
		o := echWorld(t, l, port, list, "h2")
		o.RootCAs, o.Mode = other.Pool(), mode
		r, err := Fetch(ctxT(t), "https://secret.lab.test/", o)
		wantClass(t, r, err, ClassCertificate)
		var cve *tls.CertificateVerificationError
		if !errors.As(err, &cve) {
			t.Errorf("%s: %v does not wrap a CertificateVerificationError", mode, err)
		}
	}
	// With verification off the inner certificate is not checked.
	o := echWorld(t, l, port, list, "h2")
	o.RootCAs, o.InsecureSkipVerify = other.Pool(), true
	if r := mustFetch(t, "https://secret.lab.test/", o); r.ECH != ECHAccepted {
		t.Fatalf("insecure: ech=%s", r.ECH)
	}
}

func TestMutualTLS(t *testing.T) {
	l := newLab(t)
	key, list := newKey(t, 1)
	conf := l.serverTLS(echKeys(key))
	conf.ClientAuth, conf.ClientCAs = tls.RequireAndVerifyClientCert, l.ca.Pool()
	port := startTLS(t, conf)
	cert, err := l.ca.Issue("client.lab.test", []string{"client.lab.test"}, true)
	if err != nil {
		t.Fatal(err)
	}
	o := echWorld(t, l, port, list, "h2")
	o.Certificates = []tls.Certificate{cert}
	r := mustFetch(t, "https://secret.lab.test/", o)
	if r.ECH != ECHAccepted || r.ServerSaw["client_cert"] != true {
		t.Fatalf("with cert: ech=%s saw=%v", r.ECH, r.ServerSaw)
	}
	r, err = Fetch(ctxT(t), "https://secret.lab.test/", echWorld(t, l, port, list, "h2"))
	wantClass(t, r, err, ClassHandshake)
	if r.Status != 0 {
		t.Fatalf("status %d without a client certificate", r.Status)
	}
}

// silentTCP accepts connections and never writes.
func silentTCP(t *testing.T) int {
	addr := testutil.ServeEach(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	_, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	return p
}

func TestTimeoutsClassified(t *testing.T) {
	l := newLab(t)
	_, list := newKey(t, 1)
	o := echWorld(t, l, silentTCP(t), list, "h2")
	o.HandshakeTimeout = 200 * time.Millisecond
	r, err := Fetch(ctxT(t), "https://secret.lab.test/", o)
	ce := wantClass(t, r, err, ClassTimeout)
	if ce.Op != "handshake" || r.HandshakeTime < 200*time.Millisecond {
		t.Errorf("op %s handshake time %v", ce.Op, r.HandshakeTime)
	}

	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	o = echWorld(t, l, udp.LocalAddr().(*net.UDPAddr).Port, list, "h3")
	o.HTTP3, o.HandshakeTimeout = true, 300*time.Millisecond
	r, err = Fetch(ctxT(t), "https://secret.lab.test/", o)
	wantClass(t, r, err, ClassTimeout)
}

func TestConnectRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	l := newLab(t)
	o := echWorld(t, l, port, nil, "h2")
	o.Mode = ModeBaseline
	r, err := Fetch(ctxT(t), "https://secret.lab.test/", o)
	wantClass(t, r, err, ClassConnect)
}

func TestDNSFailuresClassified(t *testing.T) {
	l := newLab(t)
	key, list := newKey(t, 1)
	port := startTLS(t, l.serverTLS(echKeys(key)))
	z := newZone(t,
		"plain.lab.test. 60 IN A 127.0.0.1",
		echRecord("noech.lab.test.", ".", port, nil, "h2"),
		"noech.lab.test. 60 IN A 127.0.0.1",
		"loop1.lab.test. 60 IN HTTPS 0 loop2.lab.test.",
		"loop2.lab.test. 60 IN HTTPS 0 loop1.lab.test.")
	o := l.opts(z.startUDP(t))

	r, err := Fetch(ctxT(t), "https://missing.lab.test/", o)
	wantClass(t, r, err, ClassDNS)
	if !errors.Is(err, ErrNXDomain) {
		t.Errorf("NXDOMAIN: %v", err)
	}
	r, err = Fetch(ctxT(t), "https://plain.lab.test:"+itoa(port)+"/", o)
	wantClass(t, r, err, ClassDNS)
	if !errors.Is(err, ErrNoConfig) || !errors.Is(err, ErrNoHTTPSRecord) || r.Status != 0 {
		t.Errorf("no HTTPS record: %v", err)
	}
	r, err = Fetch(ctxT(t), "https://noech.lab.test/", o)
	if wantClass(t, r, err, ClassDNS); !errors.Is(err, ErrNoConfig) || errors.Is(err, ErrNoHTTPSRecord) {
		t.Errorf("record without ech: %v", err)
	}
	r, err = Fetch(ctxT(t), "https://loop1.lab.test/", o)
	if wantClass(t, r, err, ClassDNS); !errors.Is(err, ErrAliasLoop) {
		t.Errorf("alias loop: %v", err)
	}

	fb := o
	fb.Policy = PolicyFallback
	r = mustFetch(t, "https://plain.lab.test:"+itoa(port)+"/", fb)
	if r.ECH != ECHFallback || !r.Fallback || r.ConfigSource != SourceNone || r.ServerSaw["sni"] != "plain.lab.test" {
		t.Fatalf("fallback: %+v", r)
	}

	// A resolver that is not there.
	dead := l.opts("127.0.0.1:1")
	r, err = Fetch(ctxT(t), "https://secret.lab.test/", dead)
	wantClass(t, r, err, ClassDNS)
	// No resolver at all: the system resolver is never used.
	r, err = Fetch(ctxT(t), "https://secret.lab.test/", Options{ConfigList: list})
	if wantClass(t, r, err, ClassDNS); !errors.Is(err, ErrNoResolver) {
		t.Errorf("no resolver: %v", err)
	}
}
