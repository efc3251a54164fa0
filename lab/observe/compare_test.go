package observe

import (
	"crypto/tls"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/internal/labtest"
	"github.com/echlab/echlab/internal/testutil"
	"github.com/echlab/echlab/lab/capture"
)

// recordTLSFlows records an ECH connection, a plain one and one whose
// ClientHello offers a config id the server does not have.
func recordTLSFlows(t *testing.T) (*labTLS, string) {
	t.Helper()
	l := newLabTLS(t)
	rec := capture.NewRecorder()
	addr := serveTLS(t, rec, l.Server)
	st := dialTLS(t, addr, l.Client("secret.lab.test", true, "h2", "http/1.1"))
	if !st.ECHAccepted {
		t.Fatal("crypto/tls did not accept ECH")
	}
	dialTLS(t, addr, l.Client("plain.lab.test", false, "http/1.1"))
	return l, writeCapture(t, rec)
}

func flowByClientPort(t *testing.T, rep *Report, port uint16) *Flow {
	t.Helper()
	for _, f := range rep.Flows {
		if f.Client.Port() == port {
			return f
		}
	}
	t.Fatalf("no flow from client port %d", port)
	return nil
}

func TestCompareSynthesizedECH(t *testing.T) {
	l, path := recordTLSFlows(t)
	rep := compareFile(t, path, CompareOptions{})
	if !rep.Synthesized || rep.Format != "pcapng" {
		t.Errorf("capture kind: synthesized=%v format=%s", rep.Synthesized, rep.Format)
	}
	if len(rep.Flows) != 2 {
		t.Fatalf("got %d flows, want 2: %+v", len(rep.Flows), rep.Flows)
	}
	e, p := rep.Flows[0], rep.Flows[1]
	if e.SNI != "public.lab.test" || e.ECH != ECHOuter || e.ECHConfigID == nil || *e.ECHConfigID != 7 {
		t.Errorf("ECH flow: SNI %q ECH %q config id %v", e.SNI, e.ECH, e.ECHConfigID)
	}
	if e.ECHKDF != 1 || e.ECHAEAD != 1 || e.ECHEncLen != 32 || e.ECHPayloadLen == 0 {
		t.Errorf("ECH flow suite/enc/payload: %#x %#x %d %d", e.ECHKDF, e.ECHAEAD, e.ECHEncLen, e.ECHPayloadLen)
	}
	if e.ServerVersion != 0x0304 || e.ServerCipher == 0 || e.ServerGroup == 0 {
		t.Errorf("ServerHello view: %#x %#x %#x", e.ServerVersion, e.ServerCipher, e.ServerGroup)
	}
	if p.SNI != "plain.lab.test" || p.ECH != ECHNone || p.Service != "http/1.1" {
		t.Errorf("plain flow: %+v", p)
	}
	if !strings.HasPrefix(e.JA4, "t13d") || !strings.HasPrefix(p.JA4, "t13d") {
		t.Errorf("JA4: %s, %s", e.JA4, p.JA4)
	}
	if e.InnerSNI != "" || e.ECHAccepted != nil {
		t.Errorf("without keys the inner SNI must stay hidden: %q %v", e.InnerSNI, e.ECHAccepted)
	}

	rep = compareFile(t, path, CompareOptions{Keys: ech.KeyList{l.Key}})
	e = rep.Flows[0]
	if e.ECH != ECHReal || e.InnerSNI != "secret.lab.test" || strings.Join(e.InnerALPN, ",") != "h2,http/1.1" {
		t.Errorf("with keys: ECH %q inner SNI %q ALPN %v warnings %v", e.ECH, e.InnerSNI, e.InnerALPN, e.Warnings)
	}
	if e.ECHAccepted == nil || !*e.ECHAccepted {
		t.Errorf("acceptance not verified: %v %v", e.ECHAccepted, e.Warnings)
	}
	other, err := ech.GenerateKey(ech.KeyOptions{ConfigID: 7})
	if err != nil {
		t.Fatal(err)
	}
	rep = compareFile(t, path, CompareOptions{Keys: ech.KeyList{other}})
	if got := rep.Flows[0].ECH; got != ECHGreaseOrKey {
		t.Errorf("with a wrong key: ECH %q, want %q", got, ECHGreaseOrKey)
	}
}

// TestTsharkAgrees opens a synthesized capture in tshark and checks that,
// flow by flow, tshark reads the same SNI and the same presence of the ECH
// extension as Compare.
func TestTsharkAgrees(t *testing.T) {
	tshark := testutil.NeedTool(t, "tshark")
	l := newLabTLS(t)
	rec := capture.NewRecorder()
	addr := serveTLS(t, rec, l.Server)
	dialTLS(t, addr, l.Client("secret.lab.test", true, "h2", "http/1.1"))
	dialTLS(t, addr, l.Client("plain.lab.test", false, "http/1.1"))
	quicExchange(t, rec, l, "doq.lab.test", "doq")
	path := writeCapture(t, rec)
	rep := compareFile(t, path, CompareOptions{})
	lines := 0
	for _, h := range labtest.TsharkHellos(t, tshark, path) {
		f := flowByClientPort(t, rep, h.Port)
		hasECH := slices.Contains(h.Types, "65037")
		if h.SNI != f.SNI || hasECH != (f.ECH != ECHNone) {
			t.Errorf("port %d: tshark SNI %q ECH %v; Compare SNI %q ECH %q", h.Port, h.SNI, hasECH, f.SNI, f.ECH)
		}
		lines++
	}
	if lines != len(rep.Flows) || lines != 3 {
		t.Errorf("tshark saw %d ClientHellos, Compare %d flows", lines, len(rep.Flows))
	}
	// tshark must not flag malformed packets in our framing.
	assertTsharkClean(t, tshark, path)
}

// assertTsharkClean fails the test if tshark marks any packet of the
// capture at path as malformed or with an error-level expert note.
func assertTsharkClean(t *testing.T, tshark, path string) {
	t.Helper()
	out, err := exec.Command(tshark, "-r", path, "-Y", "_ws.malformed || _ws.expert.severity >= error").CombinedOutput()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line != "" && !strings.Contains(line, "Running as user") {
			t.Errorf("tshark flags a packet: %s", line)
		}
	}
}

// TestHelloRetryRequest forces a HelloRetryRequest (the server only takes
// P-256, the client's first key shares are X25519MLKEM768 and X25519) on an
// ECH connection: the observer sees the HRR and, with keys, verifies
// acceptance across it.
func TestHelloRetryRequest(t *testing.T) {
	l := newLabTLS(t)
	rec := capture.NewRecorder()
	srv := l.Server.Clone()
	srv.CurvePreferences = []tls.CurveID{tls.CurveP256}
	addr := serveTLS(t, rec, srv)
	if st := dialTLS(t, addr, l.Client("secret.lab.test", true, "h2")); !st.ECHAccepted {
		t.Fatal("crypto/tls did not accept ECH")
	}
	rep := compareFile(t, writeCapture(t, rec), CompareOptions{Keys: ech.KeyList{l.Key}})
	f := rep.Flows[0]
	if !f.HRR || f.ServerGroup != uint16(tls.CurveP256) || f.InnerSNI != "secret.lab.test" {
		t.Errorf("HRR %v group %#x inner SNI %q warnings %v", f.HRR, f.ServerGroup, f.InnerSNI, f.Warnings)
	}
	if f.ECHAccepted == nil || !*f.ECHAccepted {
		t.Errorf("acceptance after HRR not verified: %v %v", f.ECHAccepted, f.Warnings)
	}
}

// TestRecorderConcurrent records many connections at once: every flow must
// come out whole, with its own SNI.
func TestRecorderConcurrent(t *testing.T) {
	l := newLabTLS(t)
	rec := capture.NewRecorder()
	addr := serveTLS(t, rec, l.Server)
	const n = 16
	done := make(chan string, n)
	for i := 0; i < n; i++ {
		go func() {
			sni := "plain.lab.test"
			c, err := tls.Dial("tcp", addr, l.Client(sni, i%2 == 0, "h2"))
			if err != nil {
				done <- err.Error()
				return
			}
			c.Write([]byte("ping"))
			c.Read(make([]byte, 4))
			c.Close()
			done <- ""
		}()
	}
	for i := 0; i < n; i++ {
		if msg := <-done; msg != "" {
			t.Fatal(msg)
		}
	}
	rep := compareFile(t, writeCapture(t, rec), CompareOptions{})
	if len(rep.Flows) != n {
		t.Fatalf("%d flows, want %d", len(rep.Flows), n)
	}
	ech := 0
	for _, f := range rep.Flows {
		if len(f.Warnings) > 0 || (f.SNI != "plain.lab.test" && f.SNI != "public.lab.test") || f.ServerVersion != 0x0304 {
			t.Errorf("flow %d: SNI %q version %#x warnings %v", f.ID, f.SNI, f.ServerVersion, f.Warnings)
		}
		if f.ECH == ECHOuter {
			ech++
		}
	}
	if ech != n/2 {
		t.Errorf("%d ECH flows, want %d", ech, n/2)
	}
}
