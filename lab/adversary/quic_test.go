package adversary

import (
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/echlab/echlab/internal/labtest"
	"github.com/echlab/echlab/lab/capture"
	"github.com/quic-go/quic-go"
)

// quicServer is a quic-go server of the lab's TLS fixture (ECH keys
// included) on loopback, accepting connections until the test ends; it
// returns its address.
func quicServer(t testing.TB, l *labtest.TLS) net.Addr {
	t.Helper()
	return labtest.QUICServer(t, l.Server, nil, false)
}

// quicDial runs one quic-go handshake with cfg to addr, bounded by
// timeout, and returns what the client sent and the dial's error.
func quicDial(t testing.TB, addr net.Addr, cfg *tls.Config, timeout time.Duration) ([][]byte, error) {
	t.Helper()
	sent, _, err := labtest.QUICDial(t, addr, cfg, &quic.Config{HandshakeIdleTimeout: timeout})
	return sent, err
}

// quicHellos are the datagrams real quic-go clients sent in a handshake
// with the fixture's server: without ECH (SNI secret.lab.test, and
// doq.lab.test) and with ECH (outer SNI public.lab.test).
type quicHellos struct {
	plain, doq, ech [][]byte
}

func newQUICHellos(t testing.TB) quicHellos {
	t.Helper()
	l := labtest.NewTLS(t)
	addr := quicServer(t, l)
	var h quicHellos
	for _, c := range []struct {
		out *[][]byte
		cfg *tls.Config
	}{{&h.plain, l.Client("secret.lab.test", false)}, {&h.doq, l.Client("doq.lab.test", false)}, {&h.ech, l.Client("secret.lab.test", true)}} {
		sent, err := quicDial(t, addr, c.cfg, 5*time.Second)
		if err != nil {
			t.Fatalf("quic dial: %v", err)
		}
		*c.out = sent
	}
	return h
}

// quicCase is one QUIC client's datagrams put to one column: whether the
// flow is black-holed, or only the server's side dropped.
type quicCase struct {
	name       string
	spec       string
	role       capture.Role
	datagrams  [][]byte
	blocked    bool
	dropServer bool // rst-after-hello
	sni        string
	ech        bool
}

// TestQUICClientHelloPolicies puts real quic-go Initials through the
// ClientHello policies: the datagrams pass until the ClientHello is
// whole (its first half always passes), then the flow's verdict holds for
// every datagram, both ways; one decision per flow, one sighting.
func TestQUICClientHelloPolicies(t *testing.T) {
	h := newQUICHellos(t)
	control := New(nil)
	for _, d := range h.ech {
		control.Datagram(flow("https/shared", "udp"), true, d)
	}
	echLen := lastDecision(t, control).ECHPayloadLen
	cases := []quicCase{
		{"block-sni: the name in the clear", "block-sni secret.lab.test", "", h.plain, true, false, "secret.lab.test", false},
		{"block-sni rst: a black hole too", "block-sni *.lab.test rst", "", h.plain, true, false, "secret.lab.test", false},
		{"block-sni: ECH hides the name", "block-sni secret.lab.test", "", h.ech, false, false, "public.lab.test", true},
		{"block-sni: the public name", "block-sni public.lab.test", "", h.ech, true, false, "public.lab.test", true},
		{"block-ech", "block-ech", "", h.ech, true, false, "public.lab.test", true},
		{"block-ech on DoQ", "block-ech rst", roleDoQ, h.ech, true, false, "public.lab.test", true},
		{"block-ech: no ECH", "block-ech", "", h.plain, false, false, "secret.lab.test", false},
		{"block-ech-public", "block-ech-public public.lab.test", "", h.ech, true, false, "public.lab.test", true},
		{"block-ech-public: another public name", "block-ech-public cloudflare-ech.com", "", h.ech, false, false, "public.lab.test", true},
		{"block-ech-public: no ECH", "block-ech-public secret.lab.test", "", h.plain, false, false, "secret.lab.test", false},
		{"block-ech-size: real ECH", "block-ech-size 1", "", h.ech, true, false, "public.lab.test", true},
		{"block-ech-size: a listed length", "block-ech-size " + strconv.Itoa(echLen), "", h.ech, false, false, "public.lab.test", true},
		{"rst-after-hello", "rst-after-hello", "", h.ech, false, true, "public.lab.test", true},
		{"rst-after-hello: no ECH", "rst-after-hello", "", h.plain, false, false, "secret.lab.test", false},
		{"block-doh by name on DoH3", "block-doh doq.lab.test", roleDoH3, h.doq, true, false, "doq.lab.test", false},
		{"block-doh by name: another", "block-doh resolver.lab.test", roleDoQ, h.doq, false, false, "doq.lab.test", false},
		{"control column", "", "", h.ech, false, false, "public.lab.test", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { runQUICCase(t, c) })
	}
}

func runQUICCase(t *testing.T, c quicCase) {
	a := New(nil)
	if c.spec != "" {
		a = mustParse(t, c.spec)
	}
	if c.role == "" {
		c.role = "https/shared"
	}
	f := flow(c.role, "udp")
	decided := false
	for i, d := range append(c.datagrams, c.datagrams[0]) {
		out, v := a.Datagram(f, true, d)
		if i == 0 && v != capture.Pass {
			t.Fatalf("the first datagram (half a ClientHello) got %v", v)
		}
		decided = decided || len(a.Decisions()) > 0
		if want := decided && c.blocked; (v != capture.Pass) != want || (v == capture.Pass) != bytes.Equal(out, d) {
			t.Errorf("datagram %d to the server: %v (%d bytes), want blocked %v", i, v, len(out), want)
		}
	}
	fromServer := []byte{0x40, 1, 2, 3, 4}
	if out, v := a.Datagram(f, false, fromServer); (v != capture.Pass) != (c.blocked || c.dropServer) || v == capture.Pass && !bytes.Equal(out, fromServer) {
		t.Errorf("a datagram from the server: %v", v)
	}
	other := f
	other.Client = netip.MustParseAddrPort("127.0.0.1:50001")
	if _, v := a.Datagram(other, false, fromServer); v != capture.Pass {
		t.Errorf("a datagram from the server to another client: %v", v)
	}
	ds := a.Decisions()
	if len(ds) != 1 {
		t.Fatalf("%d decisions, want one for the flow: %+v", len(ds), ds)
	}
	d := ds[0]
	if d.SNI != c.sni || d.ECH != c.ech || c.ech != (d.ECHPayloadLen > 0) || d.Flow != f || (d.Policy != "") != (c.blocked || c.dropServer) {
		t.Errorf("decision %+v", d)
	}
	if seen := a.Seen(); len(seen) != 1 || seen[0] != (Sighting{f, SawSNI, c.sni}) {
		t.Errorf("Seen() = %+v", seen)
	}
	if n := a.Counts()[c.spec]; c.spec != "" && (n == 1) != (c.blocked || c.dropServer) {
		t.Errorf("count %d", n)
	}
}

// TestQUICOtherRoles: UDP on a relay that is not HTTP/3, DoH3 or DoQ is
// not read as QUIC, and a TCP flow never reaches the QUIC table.
func TestQUICOtherRoles(t *testing.T) {
	h := newQUICHellos(t)
	a := mustParse(t, "block-ech")
	for _, f := range []capture.Flow{flow("dns/dot", "udp"), flow("https/shared", "tcp")} {
		for _, d := range h.ech {
			if _, v := a.Datagram(f, true, d); v != capture.Pass {
				t.Errorf("%s over %s: %v", f.Role, f.Proto, v)
			}
		}
	}
	if len(a.Decisions()) != 0 || len(a.Seen()) != 0 || a.quicFlows.len() != 0 {
		t.Errorf("decisions %+v, seen %+v, %d QUIC flows", a.Decisions(), a.Seen(), a.quicFlows.len())
	}
}

// TestQUICFlowExpiry: a flow is forgotten after quicFlowIdle without a
// datagram either way (a blocked one too), and the table never holds more
// than maxQUICFlows: the expired go first, then the one idle longest.
func TestQUICFlowExpiry(t *testing.T) {
	h := newQUICHellos(t)
	a := mustParse(t, "block-ech")
	now := time.Unix(1_800_000_000, 0)
	a.now = func() time.Time { return now }
	f := flow("https/shared", "udp")
	for _, d := range h.ech {
		a.Datagram(f, true, d)
	}
	now = now.Add(quicFlowIdle - time.Second)
	if _, v := a.Datagram(f, false, []byte{0x40, 1}); v != capture.Drop {
		t.Fatalf("a blocked flow's datagram within the idle time: %v", v)
	}
	now = now.Add(quicFlowIdle - time.Second) // idle counts from the last datagram, either way
	if _, v := a.Datagram(f, true, []byte{0x40, 1}); v != capture.Drop {
		t.Fatalf("a blocked flow kept alive by the server's datagram: %v", v)
	}
	now = now.Add(quicFlowIdle)
	if _, v := a.Datagram(f, false, []byte{0x40, 1}); v != capture.Pass || a.quicFlows.len() != 0 {
		t.Fatalf("after %v idle: %v, %d flows", quicFlowIdle, v, a.quicFlows.len())
	}
	// The cap: one flow per client port, a junk datagram each.
	client := func(i int) capture.Flow {
		g := f
		g.Client = netip.AddrPortFrom(f.Client.Addr(), uint16(10000+i))
		return g
	}
	for i := range maxQUICFlows + 10 {
		now = now.Add(time.Millisecond)
		a.Datagram(client(i), true, []byte{0x40, byte(i)})
	}
	if n := a.quicFlows.len(); n != maxQUICFlows {
		t.Errorf("%d flows, want the cap %d", n, maxQUICFlows)
	}
	for i, want := range map[int]bool{0: false, 9: false, 10: true, maxQUICFlows + 9: true} {
		_, ok := a.quicFlows.flows[quicKey{client(i).Client, f.Relay}]
		if ok != want {
			t.Errorf("flow %d in the table: %v, want %v (the oldest evicted)", i, ok, want)
		}
	}
	// Expired flows are swept when a new one comes.
	now = now.Add(quicFlowIdle)
	a.Datagram(f, true, h.ech[0])
	if n := a.quicFlows.len(); n != 1 {
		t.Errorf("%d flows after the others expired, want 1", n)
	}
}

// TestQUICThroughRelay: real quic-go clients through the observer's UDP
// relay with the adversary as its Filter: the control column connects,
// block-ech and rst-after-hello leave an ECH client to its handshake
// timeout (a black hole: no reset exists to forge), block-ech lets a
// client without ECH through.
func TestQUICThroughRelay(t *testing.T) {
	l := labtest.NewTLS(t)
	srv := quicServer(t, l)
	for _, c := range []struct {
		spec   string
		useECH bool
		fails  bool
	}{{"", true, false}, {"block-ech", true, true}, {"block-ech", false, false}, {"rst-after-hello", true, true}} {
		a := New(nil)
		if c.spec != "" {
			a = mustParse(t, c.spec)
		}
		o := &capture.Observer{Filter: a}
		relay, err := o.RelayUDP("https/shared", srv.String())
		if err != nil {
			t.Fatal(err)
		}
		raddr, _ := net.ResolveUDPAddr("udp", relay)
		const timeout = 500 * time.Millisecond
		_, err = quicDial(t, raddr, l.Client("secret.lab.test", c.useECH), timeout)
		o.Close()
		var idle *quic.IdleTimeoutError
		if c.fails != (err != nil) || c.fails && !errors.As(err, &idle) {
			t.Errorf("%q, ECH %v: dial error %v, want a handshake timeout: %v", c.spec, c.useECH, err, c.fails)
		}
		ds := a.Decisions()
		if len(ds) != 1 || ds[0].SNI == "" || ds[0].Flow.Relay.String() != relay {
			t.Errorf("%q: decisions %+v, want one for the flow", c.spec, ds)
		}
	}
}

// BenchmarkQUICDecidedFlow is the cost of a datagram of a QUIC flow the
// adversary has already decided (passed), against a datagram of a role it
// does not read.
func BenchmarkQUICDecidedFlow(b *testing.B) {
	h := newQUICHellos(b)
	a := mustParse(b, "block-ech")
	f := flow("https/shared", "udp")
	for _, d := range h.plain {
		a.Datagram(f, true, d)
	}
	short := bytes.Repeat([]byte{0x40}, 1200)
	b.Run("decided", func(b *testing.B) {
		for b.Loop() {
			a.Datagram(f, true, short)
		}
	})
	other := flow("dns/dot", "udp")
	b.Run("not-quic", func(b *testing.B) {
		for b.Loop() {
			a.Datagram(other, true, short)
		}
	})
}
