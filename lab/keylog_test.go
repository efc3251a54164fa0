package lab

import (
	"bytes"
	"context"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/echlab/echlab/client"
	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/internal/testutil"
	"github.com/echlab/echlab/lab/capture"
	"github.com/echlab/echlab/lab/observe"
)

// keylogCapture is a recorded capture of three connections to one ECH
// server, and the SSLKEYLOGFILE their clients wrote.
type keylogCapture struct {
	dir            string // holds capture.pcapng and sslkeylog.txt
	keylog         []byte
	lab            *labTLS
	sealed         *ech.Sealed // the ClientHelloOuter ech.Seal made
	plain, goECH   string      // client ports of the plain and crypto/tls ECH connections
	sealedClientCH string      // outer random of the sealed hello, hex
}

// recordKeylogCapture makes a plain TLS 1.3 connection and an ECH one with
// crypto/tls (both logging their secrets), and sends a ClientHelloOuter
// sealed by ech.Seal whose ECH_SECRET and ECH_CONFIG go to the keylog.
func recordKeylogCapture(t *testing.T) *keylogCapture {
	t.Helper()
	l := newLabTLS(t)
	rec := capture.NewRecorder()
	addr := serveTLS(t, rec, l.Server)
	var kl bytes.Buffer
	plainConf := l.Client("plain.lab.test", false, "h2")
	plainConf.KeyLogWriter = &kl
	dialTLS(t, addr, plainConf)
	echConf := l.Client(SecretName, true, "h2")
	echConf.KeyLogWriter = &kl
	if st := dialTLS(t, addr, echConf); !st.ECHAccepted {
		t.Fatal("crypto/tls: ECH not accepted")
	}
	sealed, err := sealHideALPN(&l.Key.Config, SecretName)
	if err != nil {
		t.Fatal(err)
	}
	if err := client.WriteECHKeyLog(&kl, sealed, &l.Key.Config); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := firstAnswer(ctx, addr, sealed.Record, &client.Result{}, "the ServerHello", false); err != nil {
		t.Fatal(err)
	}
	path := writeCapture(t, rec)
	dir := filepath.Dir(path)
	if err := os.WriteFile(filepath.Join(dir, FileKeylog), kl.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	kc := &keylogCapture{dir: dir, keylog: kl.Bytes(), lab: l, sealed: sealed, sealedClientCH: hex.EncodeToString(sealed.Outer.Random)}
	for _, f := range compareFile(t, path, observe.CompareOptions{}).Flows {
		switch f.SNI {
		case "plain.lab.test":
			kc.plain = f.Client.String()
		case PublicName:
			if f.ClientRandom != kc.sealedClientCH {
				kc.goECH = f.Client.String()
			}
		}
	}
	if kc.plain == "" || kc.goECH == "" {
		t.Fatalf("capture lacks the plain (%q) or the crypto/tls ECH (%q) flow", kc.plain, kc.goECH)
	}
	return kc
}

func (kc *keylogCapture) compare(t *testing.T, keylog []byte, keys ech.KeySource) *observe.Report {
	t.Helper()
	kl, err := observe.ParseKeylog(bytes.NewReader(keylog))
	if err != nil {
		t.Fatal(err)
	}
	opts := observe.CompareOptions{Keys: keys}
	opts.UseKeylog(kl)
	return compareFile(t, filepath.Join(kc.dir, FileCapture), opts)
}

func flowByRandom(rep *observe.Report, random string) *observe.Flow {
	for _, f := range rep.Flows {
		if f.ClientRandom == random {
			return f
		}
	}
	return nil
}

// TestCompareKeylogOpensSealedECH: with only the keylog (no server key),
// Compare opens the ClientHelloOuter that ech.Seal made from its
// ECH_SECRET and ECH_CONFIG lines and verifies the server's acceptance;
// the crypto/tls ECH flow, whose ECH secret crypto/tls never reveals,
// stays closed, and is not marked as logged: crypto/tls logs its traffic
// secrets under the inner random, which only the server key reveals. A
// wrong secret opens nothing.
func TestCompareKeylogOpensSealedECH(t *testing.T) {
	kc := recordKeylogCapture(t)
	if !bytes.Contains(kc.keylog, []byte("ECH_SECRET "+kc.sealedClientCH+" ")) ||
		!bytes.Contains(kc.keylog, []byte("ECH_CONFIG "+kc.sealedClientCH+" "+hex.EncodeToString(kc.lab.Key.Config.Raw)+"\n")) {
		t.Fatalf("keylog lacks the ECH lines of the outer random:\n%s", kc.keylog)
	}
	rep := kc.compare(t, kc.keylog, nil)
	f := flowByRandom(rep, kc.sealedClientCH)
	if f == nil {
		t.Fatal("no flow with the sealed hello's outer random")
	}
	if f.ECH != observe.ECHReal || f.ECHOpenedBy != "keylog" || f.InnerSNI != SecretName || !slices.Equal(f.InnerALPN, []string{"h2"}) ||
		f.ECHAccepted == nil || !*f.ECHAccepted || !f.Keylog {
		t.Errorf("sealed flow from the keylog alone: ECH %q by %q inner %q %v accepted %v keylog %v",
			f.ECH, f.ECHOpenedBy, f.InnerSNI, f.InnerALPN, f.ECHAccepted, f.Keylog)
	}
	for _, g := range rep.Flows {
		if g.Client.String() == kc.goECH && (g.ECH != observe.ECHGreaseOrKey || g.Keylog || len(g.Warnings) != 0) {
			t.Errorf("crypto/tls ECH flow: ECH %q keylog %v warnings %v", g.ECH, g.Keylog, g.Warnings)
		}
	}
	// With the server key too, the key opens it first, and the crypto/tls
	// flow's inner random finds its logged secrets.
	withKey := kc.compare(t, kc.keylog, ech.KeyList{kc.lab.Key})
	if f := flowByRandom(withKey, kc.sealedClientCH); f.ECHOpenedBy != "key" {
		t.Errorf("with keys and keylog: opened by %q", f.ECHOpenedBy)
	}
	for _, g := range withKey.Flows {
		if g.Client.String() == kc.goECH && (g.ECH != observe.ECHReal || !g.Keylog) {
			t.Errorf("crypto/tls ECH flow with the key: ECH %q keylog %v", g.ECH, g.Keylog)
		}
	}
	bad := bytes.Replace(kc.keylog, []byte("ECH_SECRET "+kc.sealedClientCH+" "+hex.EncodeToString(kc.sealed.SharedSecret)),
		[]byte("ECH_SECRET "+kc.sealedClientCH+" "+strings.Repeat("00", len(kc.sealed.SharedSecret))), 1)
	if f := flowByRandom(kc.compare(t, bad, nil), kc.sealedClientCH); f.ECH != observe.ECHGreaseOrKey || f.InnerSNI != "" {
		t.Errorf("wrong ECH_SECRET: ECH %q inner %q", f.ECH, f.InnerSNI)
	}
}

// TestParseKeylogWarnings: an ECH_CONFIG that is not an ECHConfig and an
// ECH_SECRET without ECH_CONFIG are reported, and reach the report.
func TestParseKeylogWarnings(t *testing.T) {
	r1, r2 := strings.Repeat("ab", 32), strings.Repeat("cd", 32)
	kl, err := observe.ParseKeylog(strings.NewReader("# comment\nECH_CONFIG " + r1 + " 00ff\nECH_SECRET " + r2 + " 0011\nnot a line\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(kl.ECH) != 0 || len(kl.Warnings) != 2 || !kl.Randoms[r1] || !kl.Randoms[r2] {
		t.Fatalf("ECH %v warnings %q randoms %v", kl.ECH, kl.Warnings, kl.Randoms)
	}
	opts := observe.CompareOptions{}
	opts.UseKeylog(kl)
	rep := compareFile(t, filepath.Join("observe", "testdata", "ech-tls.pcapng"), opts)
	if !slices.Contains(rep.Warnings, kl.Warnings[0]) {
		t.Errorf("report warnings %q", rep.Warnings)
	}
}

// TestDSBCaptureTshark: the capture written with a Decryption Secrets Block
// is read by Compare like the original, is 0600, and tshark decrypts from
// it alone both the plain connection and the crypto/tls ECH connection
// (through the outer-random copies of its secrets): their
// EncryptedExtensions (handshake type 8) and Finished (20) show. Given
// sslkeylog.txt alone, tshark decrypts the plain connection only.
func TestDSBCaptureTshark(t *testing.T) {
	kc := recordKeylogCapture(t)
	rep := kc.compare(t, kc.keylog, ech.KeyList{kc.lab.Key})
	if err := writeCaptureWithKeys(kc.dir, rep); err != nil {
		t.Fatal(err)
	}
	withKeys := filepath.Join(kc.dir, FileCaptureKeys)
	if st, err := os.Stat(withKeys); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v %v", FileCaptureKeys, st.Mode(), err)
	}
	if got := compareFile(t, withKeys, observe.CompareOptions{}); len(got.Flows) != len(rep.Flows) || len(got.Warnings) != 0 {
		t.Errorf("Compare of the capture with its DSB: %d flows (want %d), warnings %v", len(got.Flows), len(rep.Flows), got.Warnings)
	}
	port := func(addr string) string { return addr[strings.LastIndex(addr, ":")+1:] }
	got := tsharkDecrypted(t, "-r", withKeys)
	if !got[port(kc.plain)] || !got[port(kc.goECH)] {
		t.Errorf("tshark -r %s decrypted %v; want the plain (%s) and the ECH (%s) connections", FileCaptureKeys, got, kc.plain, kc.goECH)
	}
	got = tsharkDecrypted(t, "-r", filepath.Join(kc.dir, FileCapture), "-o", "tls.keylog_file:"+filepath.Join(kc.dir, FileKeylog))
	if !got[port(kc.plain)] || got[port(kc.goECH)] {
		t.Errorf("tshark with sslkeylog.txt decrypted %v; want the plain connection (%s) only", got, kc.plain)
	}
}

// tsharkDecrypted runs tshark with args and returns the client ports of
// the TLS connections whose EncryptedExtensions (handshake type 8, sent
// encrypted by the server) it decrypted.
func tsharkDecrypted(t *testing.T, args ...string) map[string]bool {
	t.Helper()
	tshark := testutil.NeedTool(t, "tshark")
	out, err := exec.Command(tshark, append(args, "-T", "fields", "-e", "tcp.srcport", "-e", "tcp.dstport", "-e", "tls.handshake.type", "-Y", "tls.handshake")...).Output()
	if err != nil {
		t.Fatalf("tshark %v: %v", args, err)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Split(line, "\t")
		if len(f) == 3 && slices.Contains(strings.Split(f[2], ","), "8") {
			seen[f[1]] = true
		}
	}
	return seen
}

// TestInsertDSBBadInput: a classic pcap or garbage is an error.
func TestInsertDSBBadInput(t *testing.T) {
	for _, in := range [][]byte{nil, []byte("hello, not a capture at all, no"), {0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 1, 0, 0, 0, 0, 0, 0, 0}} {
		if _, err := capture.InsertDSB(in, []byte("x")); err == nil {
			t.Errorf("InsertDSB(%q) gave no error", in)
		}
	}
}
