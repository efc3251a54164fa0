package resolver

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/echlab/echlab/internal/testutil"
	"github.com/miekg/dns"
)

var testZoneFiles = []ZoneFile{{File: "testdata/lab.test.zone"}, {File: "testdata/other.test.zone"}}

// startResolver starts a resolver on loopback with the test zones, UDP and
// TCP listeners, after mod adjusts the configuration.
func startResolver(t testing.TB, mod func(*Config)) *Running {
	t.Helper()
	cfg := Config{Zones: testZoneFiles, Listen: Listen{UDP: "127.0.0.1:0", TCP: "127.0.0.1:0"}}
	if mod != nil {
		mod(&cfg)
	}
	r, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func exchange(t testing.TB, network string, addr net.Addr, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 5 * time.Second, UDPSize: 65535}
	r, _, err := c.Exchange(m, addr.String())
	if err != nil {
		t.Fatalf("%s exchange: %v", network, err)
	}
	r.Compress = true // so that Len is the size on the wire
	return r
}

func TestTruncationOverUDPAndFullOverTCP(t *testing.T) {
	r := startResolver(t, nil)
	q := new(dns.Msg).SetQuestion("big.lab.test.", dns.TypeTXT)

	// Without EDNS the limit is 512 octets.
	resp := exchange(t, "udp", r.Addr(TransportUDP), q)
	if !resp.Truncated || resp.Len() > 512 {
		t.Errorf("UDP without EDNS: TC=%v, %d octets", resp.Truncated, resp.Len())
	}
	// With EDNS 1232 (and our 1232) it still does not fit.
	resp = exchange(t, "udp", r.Addr(TransportUDP), q.Copy().SetEdns0(1232, false))
	if !resp.Truncated || resp.Len() > 1232 || resp.IsEdns0() == nil {
		t.Errorf("UDP with EDNS 1232: TC=%v, %d octets, OPT %v", resp.Truncated, resp.Len(), resp.IsEdns0())
	}
	// A client offering 4096 is still bounded by our 1232.
	resp = exchange(t, "udp", r.Addr(TransportUDP), q.Copy().SetEdns0(4096, false))
	if !resp.Truncated {
		t.Errorf("UDP with EDNS 4096 not truncated at our 1232")
	}
	// Small answers are not truncated.
	small := exchange(t, "udp", r.Addr(TransportUDP), new(dns.Msg).SetQuestion("public.lab.test.", dns.TypeA))
	if small.Truncated || len(small.Answer) != 1 {
		t.Errorf("small UDP answer: %v", small)
	}
	// TCP carries everything.
	resp = exchange(t, "tcp", r.Addr(TransportTCP), q)
	if resp.Truncated || len(resp.Answer) != 16 || !resp.Authoritative {
		t.Errorf("TCP: TC=%v, %d answers", resp.Truncated, len(resp.Answer))
	}
}

// rawUDP sends b and waits briefly for an answer; nil means silence.
func rawUDP(t *testing.T, addr net.Addr, b []byte) []byte {
	t.Helper()
	c, err := net.Dial("udp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(b)
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	if err != nil {
		return nil
	}
	return buf[:n]
}

func TestMalformedBytesOverSockets(t *testing.T) {
	r := startResolver(t, nil)
	good, _ := new(dns.Msg).SetQuestion("public.lab.test.", dns.TypeA).Pack()
	truncatedQuestion := append([]byte(nil), good[:len(good)-3]...)
	badLabel := append([]byte(nil), good...)
	badLabel[12] = 0xc0 // a compression pointer to itself
	badLabel[13] = 12
	tests := []struct {
		name    string
		b       []byte
		formerr bool // else silence
	}{
		{"empty", nil, false},
		{"short header", []byte{1, 2, 3}, false},
		{"header only, qdcount 1", good[:12], true},
		{"question cut short", truncatedQuestion, true},
		{"pointer loop", badLabel, true},
		{"garbage after header", append(append([]byte(nil), good[:12]...), bytes.Repeat([]byte{0xff}, 40)...), true},
		{"a response (QR=1)", func() []byte { b := append([]byte(nil), good...); b[2] |= 0x80; return b }(), false},
	}
	for _, tt := range tests {
		t.Run("udp/"+tt.name, func(t *testing.T) {
			out := rawUDP(t, r.Addr(TransportUDP), tt.b)
			checkFormErr(t, out, tt.b, tt.formerr)
		})
		t.Run("tcp/"+tt.name, func(t *testing.T) {
			out := rawTCP(t, r.Addr(TransportTCP), tt.b)
			checkFormErr(t, out, tt.b, tt.formerr)
		})
	}
	// The server is still up and answers.
	for _, n := range []string{"udp", "tcp"} {
		resp := exchange(t, n, r.Addr(n), new(dns.Msg).SetQuestion("public.lab.test.", dns.TypeA))
		if len(resp.Answer) != 1 {
			t.Errorf("%s: no answer after malformed input", n)
		}
	}
}

func checkFormErr(t *testing.T, out, in []byte, formerr bool) {
	t.Helper()
	if !formerr {
		if out != nil {
			t.Errorf("got %d octets, want silence", len(out))
		}
		return
	}
	m := new(dns.Msg)
	if err := m.Unpack(out); err != nil {
		t.Fatalf("no parsable answer (%d octets): %v", len(out), err)
	}
	if m.Rcode != dns.RcodeFormatError || m.Id != binary.BigEndian.Uint16(in) || !m.Response {
		t.Errorf("got %v, want FORMERR with the query's ID", m)
	}
}

// rawTCP sends one length-prefixed message and reads one back; nil means
// the server closed the connection or stayed silent.
func rawTCP(t *testing.T, addr net.Addr, b []byte) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...))
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	var l [2]byte
	if _, err := io.ReadFull(c, l[:]); err != nil {
		return nil
	}
	out := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(c, out); err != nil {
		return nil
	}
	return out
}

func TestTCPPipelining(t *testing.T) {
	r := startResolver(t, nil)
	c, err := net.Dial("tcp", r.Addr(TransportTCP).String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	names := []string{"public.lab.test.", "secret.lab.test.", "nope.lab.test."}
	var frames []byte
	for i, n := range names {
		m := new(dns.Msg).SetQuestion(n, dns.TypeA)
		m.Id = uint16(100 + i)
		b, _ := m.Pack()
		frames = append(append(frames, byte(len(b)>>8), byte(len(b))), b...)
	}
	c.Write(frames) // all three in one segment
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for i := range names {
		var l [2]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, binary.BigEndian.Uint16(l[:]))
		io.ReadFull(c, b)
		m := new(dns.Msg)
		if err := m.Unpack(b); err != nil || m.Id != uint16(100+i) {
			t.Fatalf("response %d: %v id %d", i, err, m.Id)
		}
	}
}

func TestQueryLogAndMetrics(t *testing.T) {
	var log testutil.SyncBuffer
	r := startResolver(t, func(c *Config) {
		c.QueryLog = &log
		c.Listen.Metrics = "127.0.0.1:0"
	})
	exchange(t, "udp", r.Addr(TransportUDP), new(dns.Msg).SetQuestion("public.lab.test.", dns.TypeA))
	exchange(t, "tcp", r.Addr(TransportTCP), new(dns.Msg).SetQuestion("nope.lab.test.", dns.TypeAAAA))
	exchange(t, "udp", r.Addr(TransportUDP), new(dns.Msg).SetQuestion("example.com.", dns.TypeHTTPS))

	sc := bufio.NewScanner(strings.NewReader(log.String()))
	var entries []QueryLogEntry
	for sc.Scan() {
		var e QueryLogEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if _, err := time.Parse(time.RFC3339Nano, e.Time); err != nil {
			t.Errorf("time %q: %v", e.Time, err)
		}
		if e.Client == "" || e.Size < 12 || e.LatencyUS < 0 {
			t.Errorf("entry %+v", e)
		}
		entries = append(entries, e)
	}
	want := []string{"udp public.lab.test. A NOERROR", "tcp nope.lab.test. AAAA NXDOMAIN", "udp example.com. HTTPS REFUSED"}
	if len(entries) != len(want) {
		t.Fatalf("%d log entries, want %d:\n%s", len(entries), len(want), log.String())
	}
	for i, e := range entries {
		if got := strings.Join([]string{e.Transport, e.QName, e.QType, e.Rcode}, " "); got != want[i] {
			t.Errorf("entry %d: %q, want %q", i, got, want[i])
		}
	}

	resp, err := http.Get("http://" + r.Addr("metrics").String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, w := range []string{
		`echlab_resolver_queries_total{qtype="A",rcode="NOERROR",transport="udp"} 1`,
		`echlab_resolver_queries_total{qtype="AAAA",rcode="NXDOMAIN",transport="tcp"} 1`,
		`echlab_resolver_queries_total{qtype="HTTPS",rcode="REFUSED",transport="udp"} 1`,
		`echlab_resolver_query_duration_seconds_count{transport="udp"} 2`,
		"\ngo_goroutines ",
	} {
		if !strings.Contains(string(body), w) {
			t.Errorf("metrics lack %s", w)
		}
	}
}

func TestStartRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want error
	}{
		{"bad zone file", Config{Zones: []ZoneFile{{File: "testdata/nonexistent.zone"}}}, nil},
		{"bad address", Config{Listen: Listen{UDP: "localhost"}}, ErrConfig},
		{"TLS without certificate", Config{Listen: Listen{DoT: "127.0.0.1:0"}}, ErrConfig},
		{"bad certificate file", Config{Listen: Listen{DoT: "127.0.0.1:0"}, TLS: TLSFiles{CertFile: "testdata/lab.test.zone", KeyFile: "testdata/lab.test.zone"}}, ErrConfig},
		{"forward not a URL", Config{Forward: "127.0.0.1"}, ErrConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Start(tt.cfg)
			if err == nil {
				r.Close()
				t.Fatal("started")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("%v does not wrap %v", err, tt.want)
			}
		})
	}
}

func TestDoTALPNAndPadding(t *testing.T) {
	r := startResolver(t, func(c *Config) {
		c.Listen.DoT = "127.0.0.1:0"
		c.TLS = TLSFiles{CADir: t.TempDir()}
	})
	pool, err := x509PoolFromFile(r.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	conf := &tls.Config{RootCAs: pool, ServerName: "resolver.lab.test", NextProtos: []string{"dot"}}
	for _, padded := range []bool{true, false} {
		c, err := tls.Dial("tcp", r.Addr(TransportDoT).String(), conf)
		if err != nil {
			t.Fatal(err)
		}
		if p := c.ConnectionState().NegotiatedProtocol; p != "dot" {
			t.Errorf("ALPN %q, want dot", p)
		}
		q := new(dns.Msg).SetQuestion("secret.lab.test.", dns.TypeA).SetEdns0(1232, false)
		if padded {
			if err := padQuery(q); err != nil {
				t.Fatal(err)
			}
		}
		b, _ := q.Pack()
		c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...))
		var l [2]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			t.Fatal(err)
		}
		out := make([]byte, binary.BigEndian.Uint16(l[:]))
		if _, err := io.ReadFull(c, out); err != nil {
			t.Fatal(err)
		}
		c.Close()
		m := new(dns.Msg)
		if err := m.Unpack(out); err != nil || len(m.Answer) != 1 {
			t.Fatalf("DoT answer %v (%v)", m, err)
		}
		if padded && len(out)%responsePadBlock != 0 {
			t.Errorf("padded query: response of %d octets, want a multiple of %d", len(out), responsePadBlock)
		}
		if !padded && hasPadding(m) {
			t.Errorf("unpadded query got a padded response")
		}
	}
}

func x509PoolFromFile(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		return nil, errors.New("no certificate in " + file)
	}
	return p, nil
}

func TestForwardThroughStubClient(t *testing.T) {
	upstream := startResolver(t, func(c *Config) { c.Zones = []ZoneFile{{File: "testdata/other.test.zone"}} })
	front := startResolver(t, func(c *Config) {
		c.Zones = []ZoneFile{{File: "testdata/lab.test.zone"}}
		c.Forward = "udp://" + upstream.Addr(TransportUDP).String()
	})
	resp := exchange(t, "udp", front.Addr(TransportUDP), new(dns.Msg).SetQuestion("target.other.test.", dns.TypeA))
	if len(resp.Answer) != 1 || resp.Authoritative || !resp.RecursionAvailable {
		t.Errorf("forwarded answer %v", resp)
	}
	resp = exchange(t, "udp", front.Addr(TransportUDP), new(dns.Msg).SetQuestion("public.lab.test.", dns.TypeA))
	if !resp.Authoritative {
		t.Errorf("own zone not answered authoritatively")
	}
	// Without Forward, the upstream itself refuses lab.test.
	resp = exchange(t, "udp", upstream.Addr(TransportUDP), new(dns.Msg).SetQuestion("public.lab.test.", dns.TypeA))
	if resp.Rcode != dns.RcodeRefused {
		t.Errorf("no open resolver: got %s", dns.RcodeToString[resp.Rcode])
	}
}
