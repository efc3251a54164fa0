package ech

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"flag"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/echlab/echlab/internal/pki"
	"github.com/echlab/echlab/internal/testutil"
	"golang.org/x/crypto/cryptobyte"
)

// labCert issues a server certificate for the lab names from a fresh CA.
func labCert(t testing.TB) (tls.Certificate, *pki.CA) {
	t.Helper()
	ca, err := pki.NewCA("ech test CA")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue("lab", []string{"public.lab.test", "secret.lab.test"}, false)
	if err != nil {
		t.Fatal(err)
	}
	return cert, ca
}

// captureClientHello runs a crypto/tls client against a loopback listener
// that reads the first flight off the socket and hangs up; it returns the
// record bytes the client wrote.
func captureClientHello(t testing.TB, cfg *tls.Config) []byte {
	t.Helper()
	got := make(chan []byte, 1)
	addr := testutil.ServeOnce(t, func(c net.Conn) {
		buf, _, _ := readHandshake(c, nil)
		got <- buf
	})
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	tls.Client(conn, cfg).Handshake() // fails when the listener hangs up
	var b []byte
	select {
	case b = <-got:
	case <-time.After(5 * time.Second):
	}
	if b == nil {
		t.Fatal("no ClientHello captured")
	}
	return b
}

// readHandshake reads from c (after the bytes already in buf) until buf
// holds a complete handshake message. It returns all bytes read, the
// message and the record bytes it used.
func readHandshake(c net.Conn, buf []byte) ([]byte, []byte, int) {
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	tmp := make([]byte, 4096)
	for {
		msg, n, err := HandshakeFromRecords(buf)
		if err == nil {
			return buf, msg, n
		}
		if !errors.Is(err, ErrNeedMore) {
			return buf, nil, 0
		}
		k, rerr := c.Read(tmp)
		buf = append(buf, tmp[:k]...)
		if rerr != nil {
			return buf, nil, 0
		}
	}
}

// helloSpec describes a TLS 1.3 ClientHello built by hand, with key shares
// whose private keys the test holds.
type helloSpec struct {
	name    string
	alpn    []string
	groups  []uint16
	shares  []KeyShare
	random  []byte
	session []byte
}

func buildHello(t testing.TB, s helloSpec) []byte {
	t.Helper()
	if s.random == nil {
		s.random = randBytes(t, 32)
	}
	if s.session == nil {
		s.session = randBytes(t, 32)
	}
	ch := &ClientHello{Version: VersionTLS12, Random: s.random, SessionID: s.session,
		CipherSuites: []uint16{0x1301, 0x1302, 0x1303}, CompressionMethods: []byte{0}}
	if s.name != "" {
		ch.SetExtension(ExtServerName, serverNameExt(s.name))
	}
	ch.SetExtension(ExtSupportedGroups, u16List(2, s.groups))
	ch.SetExtension(ExtSignatureAlgorithms, u16List(2, []uint16{0x0403, 0x0804, 0x0805, 0x0806, 0x0503}))
	if len(s.alpn) > 0 {
		var b cryptobyte.Builder
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			for _, p := range s.alpn {
				addU8Bytes(b, []byte(p))
			}
		})
		ch.SetExtension(ExtALPN, b.BytesOrPanic())
	}
	ch.SetExtension(ExtSupportedVersions, u16List(1, []uint16{VersionTLS13}))
	ch.SetExtension(ExtPSKModes, []byte{1, 1})
	ch.SetExtension(ExtKeyShare, keyShareExt(s.shares))
	ch.SetExtension(ExtEncryptedHello, []byte{byte(ECHInner)})
	msg, err := ch.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func u16List(lenBytes int, v []uint16) []byte {
	var b cryptobyte.Builder
	f := func(b *cryptobyte.Builder) {
		for _, x := range v {
			b.AddUint16(x)
		}
	}
	if lenBytes == 1 {
		b.AddUint8LengthPrefixed(f)
	} else {
		b.AddUint16LengthPrefixed(f)
	}
	return b.BytesOrPanic()
}

func randBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func x25519Share(t testing.TB) KeyShare {
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return KeyShare{Group: 0x001d, Data: k.PublicKey().Bytes()}
}

func p256Share(t testing.TB) KeyShare {
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return KeyShare{Group: 0x0017, Data: k.PublicKey().Bytes()}
}

// testdataHellos reads the captured ClientHellos (TLS records) in
// testdata/hello.
func testdataHellos(t testing.TB) map[string][]byte {
	t.Helper()
	return readCaptures(t, "testdata/hello", "ClientHellos")
}

// readCaptures reads the captured handshake messages (TLS records) in the
// *.bin files of dir, keyed by file name; what names them in the failure.
func readCaptures(t testing.TB, dir, what string) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.bin"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no captured %s in %s: %v", what, dir, err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = b
	}
	return out
}

func TestParseGoClientHello(t *testing.T) {
	rec := captureClientHello(t, &tls.Config{ServerName: "secret.lab.test", NextProtos: []string{"h2", "http/1.1"},
		MinVersion: tls.VersionTLS13, CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256}})
	ch, err := ParseClientHelloRecords(rec)
	if err != nil {
		t.Fatal(err)
	}
	if ch.ServerName != "secret.lab.test" || !slices.Equal(ch.ALPN, []string{"h2", "http/1.1"}) {
		t.Errorf("server name %q, ALPN %q", ch.ServerName, ch.ALPN)
	}
	if !slices.Contains(ch.SupportedVersions, VersionTLS13) || len(ch.KeyShares) == 0 ||
		ch.KeyShares[0].Group != 0x001d || len(ch.KeyShares[0].Data) != 32 {
		t.Errorf("versions %x, key shares %+v", ch.SupportedVersions, ch.KeyShares)
	}
	if !slices.Contains(ch.SignatureAlgorithms, 0x0403) || len(ch.Random) != 32 || len(ch.SessionID) != 32 {
		t.Errorf("sigalgs %x, random %d bytes, session id %d bytes", ch.SignatureAlgorithms, len(ch.Random), len(ch.SessionID))
	}
	for _, e := range ch.Extensions {
		if e.Offset < 4 || !bytes.Equal(ch.Raw[e.Offset:e.Offset+len(e.Data)], e.Data) {
			t.Fatalf("extension %s offset %d does not point at its data", e.Name(), e.Offset)
		}
	}
	again, err := ch.Marshal()
	if err != nil || !bytes.Equal(again, ch.Raw) {
		t.Errorf("Marshal does not round-trip: %v", err)
	}
	if !bytes.Equal(MarshalRecords(ch.Raw), rec) {
		t.Errorf("MarshalRecords differs from the bytes crypto/tls wrote")
	}
}

func TestRecordFragmentation(t *testing.T) {
	for name, rec := range testdataHellos(t) {
		msg, _, err := HandshakeFromRecords(rec)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, size := range []int{1, 2, 3, 5, 100, 511} {
			var frag []byte
			frag = append(frag, recordChangeCipherSpec, 3, 3, 0, 1, 1) // skipped
			for m := msg; len(m) > 0; {
				n := min(size, len(m))
				frag = append(frag, recordHandshake, 3, 1, byte(n>>8), byte(n))
				frag, m = append(frag, m[:n]...), m[n:]
			}
			got, used, err := HandshakeFromRecords(frag)
			if err != nil || !bytes.Equal(got, msg) || used != len(frag) {
				t.Fatalf("%s in %d-byte records: used %d of %d, err %v", name, size, used, len(frag), err)
			}
		}
	}
}

func TestTruncatedClientHello(t *testing.T) {
	for name, rec := range testdataHellos(t) {
		for i := 0; i < len(rec); i++ {
			_, err := ParseClientHelloRecords(rec[:i])
			if !errors.Is(err, ErrNeedMore) {
				t.Fatalf("%s: record prefix of %d bytes: %v, want ErrNeedMore", name, i, err)
			}
			if n, err := RecordsNeeded(rec[:i]); n <= i || !errors.Is(err, ErrNeedMore) {
				t.Fatalf("%s: RecordsNeeded(%d bytes) = %d, %v", name, i, n, err)
			}
		}
		msg, _, _ := HandshakeFromRecords(rec)
		for i := 4; i < len(msg); i++ {
			// A message whose header agrees with its truncated body.
			cut := slices.Clone(msg[:i])
			n := i - 4
			cut[1], cut[2], cut[3] = byte(n>>16), byte(n>>8), byte(n)
			got, err := ParseClientHello(cut)
			if err == nil && len(got.Extensions) == 0 {
				continue // cut right before the extensions, which are optional
			}
			var fe *FieldError
			if !errors.As(err, &fe) || !(errors.Is(err, ErrMalformed) || errors.Is(err, ErrInvalid)) {
				t.Fatalf("%s: body cut at %d: %v, want a FieldError", name, i, err)
			}
			if _, err := ParseClientHello(msg[:i]); !errors.Is(err, ErrNeedMore) {
				t.Fatalf("%s: message prefix of %d bytes: %v, want ErrNeedMore", name, i, err)
			}
		}
	}
}

func TestRecordErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"not TLS", []byte("GET / HTTP/1.1\r\n\r\n"), ErrMalformed},
		{"application data", []byte{23, 3, 3, 0, 1, 0}, ErrInvalid},
		{"alert", []byte{21, 3, 3, 0, 2, 2, 40}, ErrAlert},
		{"empty record", []byte{22, 3, 1, 0, 0}, ErrInvalid},
		{"oversized record", []byte{22, 3, 1, 0x40, 0x01}, ErrInvalid},
		{"server hello type", []byte{22, 3, 3, 0, 4, 2, 0, 0, 0}, ErrInvalid},
	} {
		_, err := ParseClientHelloRecords(tc.in)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestParseClientHelloRejects(t *testing.T) {
	base := buildHello(t, helloSpec{name: "secret.lab.test", groups: []uint16{0x1d}, shares: []KeyShare{x25519Share(t)}})
	ch, err := ParseClientHello(base)
	if err != nil {
		t.Fatal(err)
	}
	mutate := func(f func(c *ClientHello)) []byte {
		c := *ch
		c.Extensions = slices.Clone(ch.Extensions)
		f(&c)
		b, err := c.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name  string
		msg   []byte
		field string
	}{
		{"duplicate extension", mutate(func(c *ClientHello) { c.Extensions = append(c.Extensions, c.Extensions[0]) }), "extensions"},
		{"bad ech type", mutate(func(c *ClientHello) { c.SetExtension(ExtEncryptedHello, []byte{7}) }), "encrypted_client_hello"},
		{"inner ech with body", mutate(func(c *ClientHello) { c.SetExtension(ExtEncryptedHello, []byte{1, 0}) }), "encrypted_client_hello"},
		{"short sni", mutate(func(c *ClientHello) { c.SetExtension(ExtServerName, []byte{0, 5, 0}) }), "server_name"},
		{"odd groups", mutate(func(c *ClientHello) { c.SetExtension(ExtSupportedGroups, []byte{0, 3, 0, 0x1d, 0}) }), "supported_groups"},
		{"empty alpn", mutate(func(c *ClientHello) { c.SetExtension(ExtALPN, []byte{0, 1, 0}) }), "application_layer_protocol_negotiation"},
	} {
		_, err := ParseClientHello(tc.msg)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%s: %v, want a FieldError on %s", tc.name, err, tc.field)
		}
	}
}

var update = flag.Bool("update", false, "recapture the ClientHellos in testdata/hello")

// TestUpdateHelloTestdata recaptures testdata/hello with -update: real
// ClientHellos as TLS records, written by Go's crypto/tls client on a
// loopback socket (go-*.bin) and by this package's Seal and
// GreaseClientHello (echlab-*.bin). They hold only public values.
func TestUpdateHelloTestdata(t *testing.T) {
	if !*update {
		t.Skip("run with -update to recapture testdata/hello")
	}
	key, err := GenerateKey(KeyOptions{ConfigID: 7, MaximumNameLength: 32})
	if err != nil {
		t.Fatal(err)
	}
	list, err := MarshalConfigList(key.Config.Raw)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"go-tls13.bin": captureClientHello(t, &tls.Config{ServerName: "secret.lab.test",
			NextProtos: []string{"h2", "http/1.1"}, MinVersion: tls.VersionTLS13}),
		"go-tls12-13.bin": captureClientHello(t, &tls.Config{ServerName: "public.lab.test"}),
		"go-ech-outer.bin": captureClientHello(t, &tls.Config{ServerName: "secret.lab.test",
			NextProtos: []string{"h2"}, MinVersion: tls.VersionTLS13, EncryptedClientHelloConfigList: list}),
	}
	inner := buildHello(t, helloSpec{name: "secret.lab.test", alpn: []string{"h2"},
		groups: []uint16{0x1d, 0x17}, shares: []KeyShare{x25519Share(t)}})
	s, err := Seal(&key.Config, inner, &SealOptions{Compress: []uint16{ExtSupportedGroups, ExtSignatureAlgorithms}})
	if err != nil {
		t.Fatal(err)
	}
	files["echlab-sealed.bin"] = s.Record
	g, err := GreaseClientHello(inner, nil)
	if err != nil {
		t.Fatal(err)
	}
	files["echlab-grease.bin"] = MarshalRecords(g.Raw)
	// ServerHello and HelloRetryRequest records from a crypto/tls server.
	cert, _ := labCert(t)
	addr := startTLSServer(t, cert, []tls.CurveID{tls.CurveP256}, key)
	s1, err := Seal(&key.Config, buildHello(t, helloSpec{name: "secret.lab.test", groups: []uint16{0x1d, 0x17},
		shares: []KeyShare{x25519Share(t)}}), nil)
	if err != nil {
		t.Fatal(err)
	}
	files["server/go-hrr.bin"] = MarshalRecordsVersion(dialPeer(t, addr).roundTrip(s1.Record), 0x0303)
	s2, err := Seal(&key.Config, buildHello(t, helloSpec{name: "secret.lab.test", groups: []uint16{0x17},
		shares: []KeyShare{p256Share(t)}}), nil)
	if err != nil {
		t.Fatal(err)
	}
	files["server/go-serverhello.bin"] = MarshalRecordsVersion(dialPeer(t, addr).roundTrip(s2.Record), 0x0303)
	os.MkdirAll(filepath.Join("testdata", "hello", "server"), 0o755)
	for name, b := range files {
		if err := os.WriteFile(filepath.Join("testdata", "hello", name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
