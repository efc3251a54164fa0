package observe

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/echlab/echlab/client"
	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/internal/labtest"
	"github.com/echlab/echlab/internal/testutil"
	"github.com/echlab/echlab/lab/capture"
	"github.com/quic-go/quic-go"
)

// labTLS is the shared loopback TLS fixture (internal/labtest).
type labTLS = labtest.TLS

func newLabTLS(t testing.TB) *labTLS { return labtest.NewTLS(t) }

// serveTLS accepts TLS connections on a recorded loopback listener and
// echoes one line back.
func serveTLS(t testing.TB, rec *capture.Recorder, cfg *tls.Config) string {
	t.Helper()
	ln := testutil.ListenTCP(t)
	labtest.ServeEcho(t, rec.WrapListener(ln), cfg)
	return ln.Addr().String()
}

// dialTLS makes one TLS connection and an exchange of a few bytes.
func dialTLS(t testing.TB, addr string, cfg *tls.Config) *tls.ConnectionState {
	t.Helper()
	return labtest.DialTLS(t, addr, cfg)
}

// quicExchange runs one quic-go connection whose client socket is
// recorded.
func quicExchange(t testing.TB, rec *capture.Recorder, l *labTLS, sni, alpn string, versions ...quic.Version) {
	t.Helper()
	srvConf := l.Server.Clone()
	srvConf.NextProtos = []string{alpn}
	srvConf.EncryptedClientHelloKeys = nil
	qc := &quic.Config{Versions: versions}
	ln, err := quic.ListenAddr("127.0.0.1:0", srvConf, qc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go func() {
		c, err := ln.Accept(ctx)
		if err != nil {
			return
		}
		<-c.Context().Done()
	}()
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	tr := &quic.Transport{Conn: rec.WrapPacketConn(udp)}
	defer tr.Close()
	c, err := tr.Dial(ctx, ln.Addr(), l.Client(sni, false, alpn), qc)
	if err != nil {
		t.Fatalf("quic dial: %v", err)
	}
	c.CloseWithError(0, "done")
}

// writeCapture writes rec to a file in a temporary directory.
func writeCapture(t testing.TB, rec *capture.Recorder) string {
	t.Helper()
	var buf bytes.Buffer
	if err := rec.WritePcapng(&buf); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "capture.pcapng")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func compareFile(t testing.TB, path string, opts CompareOptions) *Report {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rep, err := Compare(f, opts)
	if err != nil {
		t.Fatalf("Compare(%s): %v", path, err)
	}
	return rep
}

// The lab's names (package lab's PublicName and SecretName).
const (
	PublicName = "public.lab.test"
	SecretName = "secret.lab.test"
)

// port is the port of a host:port address.
func port(addr string) uint16 {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return uint16(n)
}

// goClientHello returns crypto/tls's ClientHello message for name and
// alpn.
func goClientHello(name string, alpn []string) ([]byte, error) {
	conf := &tls.Config{ServerName: name, MinVersion: tls.VersionTLS13, NextProtos: alpn}
	records, err := client.CaptureClientHello(conf)
	if err != nil {
		return nil, err
	}
	msg, _, err := ech.HandshakeFromRecords(records)
	if err != nil {
		return nil, fmt.Errorf("crypto/tls ClientHello: %w", err)
	}
	return msg, nil
}
