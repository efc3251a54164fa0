package lab

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/echlab/echlab/internal/testutil"
	"github.com/miekg/dns"
)

// TestRunEndToEnd runs the embedded lab on a reduced matrix and checks the
// report against what each scenario must show an observer. The synth
// capture always runs; the live one needs root (CI runs as root).
func TestRunEndToEnd(t *testing.T) {
	for _, capture := range []string{CaptureSynth, CaptureLive} {
		t.Run(capture, func(t *testing.T) {
			if capture == CaptureLive && os.Geteuid() != 0 {
				t.Skip("live capture needs root or CAP_NET_RAW")
			}
			testRun(t, capture)
		})
	}
}

func testRun(t *testing.T, capture string) {
	out := t.TempDir()
	var progress bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	res, err := Run(ctx, RunConfig{OutDir: out, Capture: capture, Repeat: 1, Progress: &progress,
		Scenarios:  []string{"baseline", "ech-shared", "ech-split", "stale-retry", "grease"},
		Transports: []string{DNSDo53, DNSDoH}})
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, progress.String())
	}
	if res.Capture != capture || len(res.Cases) != 10 || res.Failed+res.Skipped != 0 {
		t.Fatalf("capture %s, %d cases, %d failed, %d skipped\n%s", res.Capture, len(res.Cases), res.Failed, res.Skipped, progress.String())
	}
	if n := strings.Count(progress.String(), "✓"); n != 10 {
		t.Errorf("progress has %d ✓ lines, want 10:\n%s", n, progress.String())
	}
	checkFiles(t, out)
	rows := readSummary(t, out)
	for _, sc := range []string{"baseline", "ech-shared", "ech-split", "stale-retry", "grease"} {
		for _, tr := range []string{DNSDo53, DNSDoH} {
			r, ok := rows[sc+"/"+tr]
			if !ok {
				t.Errorf("summary has no row %s/%s", sc, tr)
				continue
			}
			checkRow(t, r)
		}
	}
	checkStaleRetry(t, out)
	checkTshark(t, out)
}

// checkRow asserts what the observer must have learned in one row.
func checkRow(t *testing.T, r Row) {
	t.Helper()
	name := r.Scenario + "/" + r.Transport
	switch r.Scenario {
	case "baseline", "grease":
		if !slices.Equal(r.SNI, []string{SecretName}) || !slices.Contains(r.Leaked, SecretName) {
			t.Errorf("%s: SNI %v leaked %v, want the true name in the clear SNI", name, r.SNI, r.Leaked)
		}
		if r.Scenario == "grease" && !slices.Equal(r.ECH, []string{ECHGreaseOrKey}) {
			t.Errorf("%s: ECH %v, want a GREASE extension no key opens", name, r.ECH)
		}
	default:
		if !slices.Equal(r.SNI, []string{PublicName}) || !slices.Equal(r.InnerSNI, []string{SecretName}) {
			t.Errorf("%s: SNI %v inner %v, want only %s outside and %s recovered with keys", name, r.SNI, r.InnerSNI, PublicName, SecretName)
		}
		want := "yes"
		if r.Scenario == "stale-retry" {
			want = "no→yes"
		}
		if r.Accepted != want {
			t.Errorf("%s: accepted %q, want %q (verified with the keys)", name, r.Accepted, want)
		}
		if r.ClientHelloBytes == 0 || r.HandshakeMS <= 0 {
			t.Errorf("%s: ClientHello %d bytes, handshake %.2f ms", name, r.ClientHelloBytes, r.HandshakeMS)
		}
	}
	inDNS := slices.ContainsFunc(r.DNSNames, func(n string) bool { return strings.HasSuffix(n, SecretName) })
	if r.Transport == DNSDo53 && !inDNS {
		t.Errorf("%s: plain DNS names %v lack %s", name, r.DNSNames, SecretName)
	}
	if r.Transport == DNSDoH && len(r.DNSNames) > 0 {
		t.Errorf("%s: the observer read DNS names %v over DoH", name, r.DNSNames)
	}
	if r.Transport == DNSDoH && r.Scenario != "baseline" && r.Scenario != "grease" && len(r.Leaked) > 0 {
		t.Errorf("%s: leaked %v: %s", name, r.Leaked, r.Verdict)
	}
	if r.Verdict == "" {
		t.Errorf("%s: no verdict", name)
	}
}

func checkFiles(t *testing.T, out string) {
	t.Helper()
	for _, f := range []string{FileCapture, FileKeylog, FileClient, FileServer, FileQueries, FileScenarios,
		FileReport, FileFlowsJSON, FileFlowsJSONL, FileFlowsCSV, FileSummary, FileManifest, FileZone} {
		fi, err := os.Stat(filepath.Join(out, f))
		if err != nil || fi.Size() == 0 {
			t.Errorf("output %s missing or empty: %v", f, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(out, FileKeylog)); err == nil && fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", FileKeylog, fi.Mode().Perm())
	}
	var m struct {
		Schema  int    `json:"schema"`
		Capture string `json:"capture"`
		Files   []struct{ Name string }
	}
	b, _ := os.ReadFile(filepath.Join(out, FileManifest))
	if err := json.Unmarshal(b, &m); err != nil || m.Schema != 1 || m.Capture == "" || len(m.Files) < 12 {
		t.Errorf("manifest: %+v, %v", m, err)
	}
}

func readSummary(t *testing.T, out string) map[string]Row {
	t.Helper()
	var s struct {
		Schema int   `json:"schema"`
		Rows   []Row `json:"rows"`
	}
	b, err := os.ReadFile(filepath.Join(out, FileSummary))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &s); err != nil || s.Schema != 1 {
		t.Fatalf("summary.json: schema %d, %v", s.Schema, err)
	}
	rows := map[string]Row{}
	for _, r := range s.Rows {
		rows[r.Scenario+"/"+r.Transport] = r
	}
	return rows
}

// checkStaleRetry finds the stale-retry client records: rejected, retried
// with the server's retry configs, accepted.
func checkStaleRetry(t *testing.T, out string) {
	t.Helper()
	f, err := os.Open(filepath.Join(out, FileClient))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var cr CaseResult
		if err := json.Unmarshal(sc.Bytes(), &cr); err != nil {
			t.Fatalf("client.jsonl: %v", err)
		}
		if cr.Scenario != "stale-retry" {
			continue
		}
		n++
		if cr.Result == nil || !cr.Result.Retried || cr.Result.ECH != "accepted" || cr.Outcome != OutcomeOK {
			t.Errorf("stale-retry case %s: %+v", cr.Label(), cr.Result)
		}
	}
	if n != 2 {
		t.Errorf("client.jsonl has %d stale-retry records, want 2", n)
	}
}

// checkTshark opens the capture with tshark and compares its SNI list with
// the report's.
func checkTshark(t *testing.T, out string) {
	t.Helper()
	tshark := testutil.NeedTool(t, "tshark")
	capFile := filepath.Join(out, FileCapture)
	if b, err := exec.Command(tshark, "-r", capFile, "-q").CombinedOutput(); err != nil {
		t.Fatalf("tshark -r -q: %v\n%s", err, b)
	}
	b, err := exec.Command(tshark, "-r", capFile, "-Y", "tls.handshake.type == 1",
		"-T", "fields", "-e", "tls.handshake.extensions_server_name").Output()
	if err != nil {
		t.Fatalf("tshark fields: %v", err)
	}
	var fromTshark []string
	for _, l := range strings.Fields(string(b)) {
		if !slices.Contains(fromTshark, l) {
			fromTshark = append(fromTshark, l)
		}
	}
	var fromReport []string
	jb, _ := os.ReadFile(filepath.Join(out, FileFlowsJSONL))
	for _, line := range bytes.Split(bytes.TrimSpace(jb), []byte("\n")) {
		var f Flow
		if err := json.Unmarshal(line, &f); err != nil {
			t.Fatalf("flows.jsonl: %v", err)
		}
		if f.SNI != "" && !slices.Contains(fromReport, f.SNI) {
			fromReport = append(fromReport, f.SNI)
		}
	}
	slices.Sort(fromTshark)
	slices.Sort(fromReport)
	if !slices.Equal(fromTshark, fromReport) || len(fromReport) != 2 {
		t.Errorf("SNI names: tshark %v, report %v (want public.lab.test and secret.lab.test in both)", fromTshark, fromReport)
	}
}

// TestRelay sends bytes both ways through the TCP and UDP relays and
// checks that they arrive intact and that the recording holds them.
func TestRelay(t *testing.T) {
	rec := NewRecorder()
	obs := &Observer{WrapConn: rec.WrapConn, WrapPacketConn: rec.WrapPacketConn}
	tcpBackend, got := tcpEcho(t)
	udpBackend := dnsEcho(t)
	addr, err := obs.RelayPair(tcpBackend, udpBackend)
	if err != nil {
		t.Fatal(err)
	}

	// TCP: a real ClientHello, then 256 KiB of random bytes, half-closed;
	// the backend echoes everything back and closes.
	hello := clientHelloFor(t, "relay.lab.test")
	payload := make([]byte, 256<<10)
	rand.Read(payload)
	sent := append(append([]byte(nil), hello...), payload...)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		c.Write(sent)
		c.(*net.TCPConn).CloseWrite()
	}()
	back, err := io.ReadAll(c)
	c.Close()
	if err != nil || !bytes.Equal(back, sent) {
		t.Fatalf("TCP echo through the relay: %d of %d bytes, equal %v, %v", len(back), len(sent), bytes.Equal(back, sent), err)
	}
	if b := <-got; !bytes.Equal(b, sent) {
		t.Fatalf("backend got %d bytes, want the %d sent", len(b), len(sent))
	}

	// UDP: a DNS query and its answer.
	m := new(dns.Msg)
	m.SetQuestion("relay.lab.test.", dns.TypeHTTPS)
	resp, err := dns.Exchange(m, addr)
	if err != nil || resp.Id != m.Id || len(resp.Question) != 1 || resp.Question[0].Name != "relay.lab.test." {
		t.Fatalf("UDP exchange through the relay: %v, %v", resp, err)
	}

	time.Sleep(50 * time.Millisecond)
	if err := obs.Close(); err != nil {
		t.Fatal(err)
	}
	var pcap bytes.Buffer
	if err := rec.WritePcapng(&pcap); err != nil {
		t.Fatal(err)
	}
	rep, err := Compare(&pcap, CompareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var sawSNI, sawDNS bool
	for _, f := range rep.Flows {
		if f.Server.Port() != port(addr) {
			t.Errorf("flow %d to %v: the recording should show only client ↔ relay", f.ID, f.Server)
		}
		sawSNI = sawSNI || f.SNI == "relay.lab.test"
		for _, d := range f.DNS {
			sawDNS = sawDNS || d.Name == "relay.lab.test." && d.Response
		}
	}
	if !sawSNI || !sawDNS {
		t.Errorf("recording: SNI seen %v, DNS answer seen %v; flows %+v", sawSNI, sawDNS, rep.Flows)
	}
}

// tcpEcho starts a TCP server that echoes one connection and reports what
// it received.
func tcpEcho(t *testing.T) (string, chan []byte) {
	got := make(chan []byte, 1)
	addr := testutil.ServeOnce(t, func(c net.Conn) {
		var all bytes.Buffer
		io.Copy(io.MultiWriter(c, &all), c)
		c.(*net.TCPConn).CloseWrite()
		got <- all.Bytes()
	})
	return addr, got
}

// dnsEcho starts a UDP server that answers every DNS query with an empty
// NOERROR response.
func dnsEcho(t *testing.T) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			m := new(dns.Msg)
			if m.Unpack(buf[:n]) != nil {
				continue
			}
			r := new(dns.Msg)
			r.SetReply(m)
			b, _ := r.Pack()
			pc.WriteTo(b, from)
		}
	}()
	return pc.LocalAddr().String()
}

// clientHelloFor returns crypto/tls's ClientHello records for name.
func clientHelloFor(t *testing.T, name string) []byte {
	c := &captureConn{}
	tls.Client(c, &tls.Config{ServerName: name}).Handshake()
	if len(c.written) == 0 {
		t.Fatal("no ClientHello written")
	}
	return c.written
}

// BenchmarkRelayTCP measures a round trip of 64 KiB through a TCP relay,
// with and without recording.
func BenchmarkRelayTCP(b *testing.B) {
	for _, recorded := range []bool{false, true} {
		name := map[bool]string{false: "plain", true: "recorded"}[recorded]
		b.Run(name, func(b *testing.B) {
			obs := &Observer{}
			if recorded {
				rec := NewRecorder()
				obs.WrapConn = rec.WrapConn
			}
			defer obs.Close()
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					go func() { io.Copy(c, c); c.Close() }()
				}
			}()
			addr, err := obs.RelayTCP(ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			buf := make([]byte, 64<<10)
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				if _, err := c.Write(buf); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
