package pki

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestIssueAndHandshake(t *testing.T) {
	ca, err := NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Issue("server", []string{"secret.lab.test", "127.0.0.1"}, false)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := ca.Issue("client", nil, true)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{srv},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    ca.Pool(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Write([]byte("ok"))
		c.Close()
	}()
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{
		RootCAs: ca.Pool(), ServerName: "secret.lab.test", Certificates: []tls.Certificate{cli},
	})
	if err != nil {
		t.Fatalf("mTLS handshake with lab certificates: %v", err)
	}
	b, _ := io.ReadAll(conn)
	conn.Close()
	if string(b) != "ok" {
		t.Fatalf("read %q", b)
	}
	// The IP SAN verifies too, and a name not in the certificate does not.
	if err := srv.Leaf.VerifyHostname("127.0.0.1"); err != nil {
		t.Errorf("IP SAN: %v", err)
	}
	if err := srv.Leaf.VerifyHostname("other.lab.test"); err == nil {
		t.Error("certificate verified for a name it does not hold")
	}
	if _, err := srv.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool()}); err != nil {
		t.Errorf("chain: %v", err)
	}
}

func TestSaveLoadModes(t *testing.T) {
	dir := t.TempDir()
	ca, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	again, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Cert.Equal(ca.Cert) {
		t.Fatal("LoadOrCreate made a new CA instead of loading the saved one")
	}
	leaf, err := ca.Issue("s", []string{"public.lab.test"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteCertificate(dir, "server", leaf); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]os.FileMode{CAKeyFile: 0o600, "server.key": 0o600, CACertFile: 0o644, "server.crt": 0o644} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s mode %v, want %v", name, st.Mode().Perm(), want)
		}
	}
	if _, err := tls.LoadX509KeyPair(filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")); err != nil {
		t.Errorf("written pair does not load: %v", err)
	}
	pool, err := LoadPool(filepath.Join(dir, CACertFile))
	if err != nil || pool == nil {
		t.Fatalf("LoadPool: %v", err)
	}
}

func TestLoadRejectsBadFiles(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(dir); err == nil {
		t.Error("Load of an empty directory succeeded")
	}
	os.WriteFile(filepath.Join(dir, CACertFile), []byte("not pem"), 0o644)
	os.WriteFile(filepath.Join(dir, CAKeyFile), []byte("not pem"), 0o600)
	if _, err := Load(dir); err == nil {
		t.Error("Load of garbage succeeded")
	}
	if _, err := LoadPool(filepath.Join(dir, CACertFile)); err == nil {
		t.Error("LoadPool of garbage succeeded")
	}
	// A leaf pair is not a CA.
	ca, _ := NewCA("x")
	leaf, _ := ca.Issue("leaf", []string{"a.lab.test"}, false)
	d2 := t.TempDir()
	if err := WriteCertificate(d2, "ca", leaf); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(d2); err == nil {
		t.Error("Load accepted a leaf certificate as a CA")
	}
}
