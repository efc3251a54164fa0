package ech

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/echlab/echlab/internal/pki"
	"github.com/echlab/echlab/internal/testutil"
)

func buildESNIHello(t *testing.T, set *ESNIKeySet, o ESNIHelloOptions) *ESNIHello {
	t.Helper()
	h, err := BuildESNIClientHello(set.Keys, o)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestBuildESNIClientHello(t *testing.T) {
	set := testESNIKeySet(t, ESNIKeyOptions{})
	h := buildESNIHello(t, set, ESNIHelloOptions{ServerName: "secret.lab.test", ALPN: []string{"h2", "http/1.1"}})
	ch, err := ParseClientHelloRecords(h.Records)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ch.Extension(ExtServerName); ok || ch.ServerName != "" {
		t.Fatal("cleartext server_name present")
	}
	if bytes.Contains(h.Records, []byte("secret")) {
		t.Fatal("the true name appears in the clear")
	}
	if len(ch.KeyShares) != 1 || ch.KeyShares[0].Group != GroupX25519 || len(ch.KeyShares[0].Data) != 32 ||
		!bytes.Equal(ch.KeyShares[0].Data, h.KeyShare.PublicKey().Bytes()) {
		t.Fatalf("key share %+v", ch.KeyShares)
	}
	if strings.Join(ch.ALPN, ",") != "h2,http/1.1" || len(ch.SupportedVersions) != 1 || ch.SupportedVersions[0] != VersionTLS13 {
		t.Fatalf("ALPN %v versions %v", ch.ALPN, ch.SupportedVersions)
	}
	name, err := DecryptESNI(set, ch)
	if err != nil || name != "secret.lab.test" {
		t.Fatalf("DecryptESNI = %q, %v", name, err)
	}
	v, ok := ObserveESNI(ch)
	if !ok || v.Err != nil || v.Suite != TLSAES128GCMSHA256 || v.KeyShareGroup != GroupX25519 || v.KeyShareLen != 32 ||
		v.EncryptedLen != 16+260+16 || v.PaddedLength != 260 || v.CleartextSNI != "" {
		t.Fatalf("view %+v", v)
	}
	if !bytes.Equal(ch.Raw[v.ExtensionOffset:v.ExtensionOffset+2], []byte{0x13, 0x01}) {
		t.Fatal("ExtensionOffset does not point at the extension body")
	}
	other := testESNIKeySet(t, ESNIKeyOptions{})
	if k, ok := MatchESNIKeys(v, []*ESNIKeys{other.Keys, set.Keys}); !ok || k != set.Keys {
		t.Fatal("MatchESNIKeys did not find the keys used")
	}
	// Moving the extension to another ClientHello (other key share) fails.
	h2 := buildESNIHello(t, set, ESNIHelloOptions{ServerName: "x.lab.test"})
	h2.Hello.SetExtension(ExtEncryptedServerName, h.Sealed.ExtData)
	if _, err := DecryptESNI(set, h2.Hello); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("cut-and-paste: %v", err)
	}

	pub := buildESNIHello(t, set, ESNIHelloOptions{ServerName: "secret.lab.test", PublicNameSNI: true})
	if pub.Hello.ServerName != "public.lab.test" {
		t.Fatalf("PublicNameSNI: server_name %q", pub.Hello.ServerName)
	}
	if v, _ := ObserveESNI(pub.Hello); v.CleartextSNI != "public.lab.test" {
		t.Fatal("view misses the cleartext public name")
	}
	if v, ok := ObserveESNI(&ClientHello{}); ok || v != nil {
		t.Fatal("view of a ClientHello without ESNI")
	}
	bad := &ClientHello{Extensions: []HelloExtension{{Type: ExtEncryptedServerName, Data: []byte{1}}}}
	if v, ok := ObserveESNI(bad); !ok || !errors.Is(v.Err, ErrMalformed) {
		t.Fatal("malformed extension not reported")
	}
}

// TestESNIHelloToGoTLSServer sends a real ESNI ClientHello over loopback
// TCP to Go's crypto/tls server, which does not know ESNI. What happens
// (asserted below): it ignores the unknown 0xffce extension, its
// ClientHelloInfo has ServerName "" (so it serves Certificates[0], the
// public name's), and it answers with a TLS 1.3 ServerHello with an X25519
// share, no alert. We cannot send Finished, so its handshake ends with an
// error once we close. The bytes the server received parse and decrypt.
func TestESNIHelloToGoTLSServer(t *testing.T) {
	ca, err := pki.NewCA("echlab ESNI test CA")
	if err != nil {
		t.Fatal(err)
	}
	public, _ := ca.Issue("public.lab.test", []string{"public.lab.test"}, false)
	secret, _ := ca.Issue("secret.lab.test", []string{"secret.lab.test"}, false)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var (
		mu       sync.Mutex
		captured bytes.Buffer
		info     *tls.ClientHelloInfo
		done     = make(chan error, 1)
	)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		rec := &recordingConn{Conn: c, mu: &mu, buf: &captured}
		srv := tls.Server(rec, &tls.Config{Certificates: []tls.Certificate{public, secret},
			GetConfigForClient: func(chi *tls.ClientHelloInfo) (*tls.Config, error) {
				mu.Lock()
				info = chi
				mu.Unlock()
				return nil, nil
			}})
		done <- srv.Handshake()
	}()

	set := testESNIKeySet(t, ESNIKeyOptions{})
	h := buildESNIHello(t, set, ESNIHelloOptions{ServerName: "secret.lab.test", ALPN: []string{"h2"}})
	conn, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write(h.Records); err != nil {
		t.Fatal(err)
	}
	var resp []byte
	buf := make([]byte, 4096)
	for {
		n, err := conn.Read(buf)
		resp = append(resp, buf[:n]...)
		if _, _, herr := HandshakeFromRecords(resp); herr == nil || !errors.Is(herr, ErrNeedMore) || err != nil {
			break
		}
	}
	conn.Close() // we cannot finish: the server waits for our Finished
	serverErr := <-done

	msg, _, err := HandshakeFromRecords(resp)
	if err != nil {
		t.Fatalf("server answered %x…: %v (server: %v)", resp[:min(len(resp), 16)], err, serverErr)
	}
	sh, err := ParseServerHello(msg)
	if err != nil {
		t.Fatal(err)
	}
	if sh.IsHRR || sh.SupportedVersion != VersionTLS13 || sh.KeyShareGroup != GroupX25519 || len(sh.KeyShare) != 32 {
		t.Fatalf("ServerHello: HRR %v version %#x group %#x", sh.IsHRR, sh.SupportedVersion, sh.KeyShareGroup)
	}
	if serverErr == nil {
		t.Fatal("server handshake completed although the client never sent Finished")
	}
	t.Logf("crypto/tls answered a TLS 1.3 ServerHello (suite %#04x) and its flight; its handshake then ended with: %v",
		sh.CipherSuite, serverErr)

	mu.Lock()
	got := append([]byte(nil), captured.Bytes()...)
	chi := info
	mu.Unlock()
	if chi == nil || chi.ServerName != "" || strings.Join(chi.SupportedProtos, ",") != "h2" {
		t.Fatalf("crypto/tls saw ClientHelloInfo %+v", chi)
	}
	if !bytes.HasPrefix(got, h.Records) {
		t.Fatal("the server did not receive our records unchanged")
	}
	ch, err := ParseClientHelloRecords(got)
	if err != nil {
		t.Fatal(err)
	}
	name, err := DecryptESNI(set, ch)
	if err != nil || name != "secret.lab.test" {
		t.Fatalf("decrypting captured bytes: %q, %v", name, err)
	}
}

// recordingConn copies what the server reads.
type recordingConn struct {
	net.Conn
	mu  *sync.Mutex
	buf *bytes.Buffer
}

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.buf.Write(p[:n])
	c.mu.Unlock()
	return n, err
}

var _ io.Reader = (*recordingConn)(nil)

// TestESNIHelloWireshark has Wireshark's TLS dissector, an independent
// parser, read our ClientHello: it must find the encrypted_server_name
// fields where we put them and no server_name.
func TestESNIHelloWireshark(t *testing.T) {
	tshark := testutil.NeedTool(t, "tshark")
	text2pcap := testutil.NeedTool(t, "text2pcap")
	set := testESNIKeySet(t, ESNIKeyOptions{})
	h := buildESNIHello(t, set, ESNIHelloOptions{ServerName: "secret.lab.test", ALPN: []string{"h2"}})
	dir := t.TempDir()
	var dump strings.Builder
	for off := 0; off < len(h.Records); off += 16 {
		dump.WriteString(strings.ToUpper(hexOffset(off)))
		for _, b := range h.Records[off:min(off+16, len(h.Records))] {
			dump.WriteString(" " + hexByte(b))
		}
		dump.WriteString("\n")
	}
	in, pcap := filepath.Join(dir, "hello.txt"), filepath.Join(dir, "hello.pcap")
	if err := os.WriteFile(in, []byte(dump.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(text2pcap, "-q", "-T", "40000,443", in, pcap).CombinedOutput(); err != nil {
		t.Fatalf("text2pcap: %v\n%s", err, out)
	}
	out, err := exec.Command(tshark, "-r", pcap, "-d", "tcp.port==443,tls", "-T", "fields", "-E", "separator=|",
		"-e", "tls.esni.suite", "-e", "tls.esni.record_digest", "-e", "tls.esni.encrypted_sni_length",
		"-e", "tls.handshake.extensions_server_name", "-e", "tls.handshake.extensions_alpn_str").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	f := strings.Split(strings.TrimSpace(string(out)), "|")
	v, _ := ObserveESNI(h.Hello)
	if len(f) != 5 || f[0] != "0x1301" || strings.ReplaceAll(f[1], ":", "") != hexString(v.RecordDigest) ||
		f[2] != "292" || f[3] != "" || f[4] != "h2" {
		t.Fatalf("tshark fields %q", f)
	}
}

func hexByte(b byte) string  { return hexString([]byte{b}) }
func hexOffset(o int) string { return hexString([]byte{byte(o >> 16), byte(o >> 8), byte(o)}) }
func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, x := range b {
		out = append(out, digits[x>>4], digits[x&15])
	}
	return string(out)
}
