package resolver

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"slices"
	"testing"

	"github.com/miekg/dns"
)

// zoneQuestions lists a question for every name of the zones (empty

// non-terminals, wildcard owners and names they synthesise, CNAME chains,

// names that do not exist, names outside the zones) times every type

// found in the zones and a few others (NODATA, ANY, AXFR, unknown types).

func zoneQuestions(zones []*Zone) []dns.Question {
	names := []string{"nope.lab.test.", "a.b.wild.lab.test.", "x.wild.lab.test.", "deep.wild.lab.test.",
		"x.deep.wild.lab.test.", "example.com.", "."}
	types := []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeHTTPS, dns.TypeSVCB, dns.TypeTXT, dns.TypeMX,
		dns.TypeNS, dns.TypeSOA, dns.TypeCNAME, dns.TypeANY, dns.TypeAXFR, 0, 65280}
	for _, z := range zones {
		for n := range z.names {
			names = append(names, n)
		}
		for _, node := range z.nodes {
			for t := range node {
				types = append(types, t)
			}
		}
	}
	slices.Sort(names)
	slices.Sort(types)
	var qs []dns.Question
	for _, n := range slices.Compact(names) {
		for _, t := range slices.Compact(types) {
			qs = append(qs, dns.Question{Name: n, Qtype: t, Qclass: dns.ClassINET})
		}
	}
	return qs
}

// queryVariant is one way of asking a question.

type queryVariant struct {
	name  string
	rd    bool
	edns  uint16 // EDNS(0) UDP size; 0 means no OPT record
	do    bool
	mixed bool // qname in mixed case
}

var queryVariants = []queryVariant{
	{name: "plain"},
	{name: "rd", rd: true},
	{name: "edns512", edns: 512},
	{name: "edns1232", edns: 1232, rd: true},
	{name: "edns4096-do", edns: 4096, do: true},
	{name: "mixed", mixed: true, edns: 1232},
	{name: "mixed-do-rd", mixed: true, edns: 1232, do: true, rd: true},
}

func mixedCase(s string) string {
	b := []byte(s)
	for i := 0; i < len(b); i += 2 {
		if b[i] >= 'a' && b[i] <= 'z' {
			b[i] -= 'a' - 'A'
		}
	}
	return string(b)
}

func (v queryVariant) pack(t testing.TB, q dns.Question, id uint16) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.Id, m.RecursionDesired = id, v.rd
	if v.mixed {
		q.Name = mixedCase(q.Name)
	}
	m.Question = []dns.Question{q}
	if v.edns != 0 {
		m.SetEdns0(v.edns, v.do)
	}
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFastPathMatchesSlow asks every question of the test zone in every

// variant, twice with different IDs (the second from the cache), and

// compares the fast path's answer byte for byte with the slow path's.

func TestFastPathMatchesSlow(t *testing.T) {
	a := testAuthority(t)
	slow := HandlerFunc(a.Answer) // not an *Authority: never the fast path
	var key [maxFastKey]byte
	fast, total := 0, 0
	for round := range 2 {
		for i, q := range zoneQuestions(a.Zones()) {
			for _, v := range queryVariants {
				b := v.pack(t, q, uint16(i*7+round))
				want := udpReply(context.Background(), slow, b, nil, defaultUDPSize)
				total++
				e, fq := a.fastAnswer(b, defaultUDPSize, &key)
				if e == nil {
					continue
				}
				fast++
				if got := appendFast(nil, e, fq); !bytes.Equal(got, want) {
					t.Fatalf("%s %s %s round %d:\nfast %x\nslow %x", q.Name, dns.Type(q.Qtype), v.name, round, got, want)
				}
			}
		}
	}
	// Only out-of-zone names and answers that need truncation decline.
	if fast < total*9/10 {
		t.Errorf("fast path took %d of %d queries", fast, total)
	}
	t.Logf("fast path answered %d of %d queries", fast, total)
}

// udpAsker sends queries to one UDP server over one socket.

// ask sends b and returns the answer with b's ID.

// TestFastPathMatchesSlowOverSockets is TestFastPathMatchesSlow on real

// sockets: the same authority behind a UDP server that takes the fast

// path and one that cannot.

// startPortableUDP is StartUDP serving h with fastLoopPortable, the loop

// of the systems without recvmmsg.

// TestUDPCompressedLikeTCP checks that an answer over UDP has the same

// bytes as over TCP, name compression included, for every question of

// the test zone; only answers truncated over UDP differ (TC=1, fewer

// records). Both the fast path and the slow path are checked.

// askTCP sends one query over c and reads the answer.

// TestFastPathDeclines lists queries the fast path must leave to the

// slow path, and checks that the UDP server still answers them as the

// slow path does.

func TestFastPathDeclines(t *testing.T) {
	a := testAuthority(t)
	base := func(mod func(*dns.Msg)) []byte {
		m := new(dns.Msg).SetQuestion("public.lab.test.", dns.TypeA)
		if mod != nil {
			mod(m)
		}
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	withOpt := func(o dns.EDNS0) func(*dns.Msg) {
		return func(m *dns.Msg) { m.SetEdns0(1232, false).IsEdns0().Option = []dns.EDNS0{o} }
	}
	pointer := base(nil)
	pointer = append(pointer[:12], 0xc0, 12, 0, 1, 0, 1) // a qname that points to itself
	tests := map[string][]byte{
		"padding": base(withOpt(&dns.EDNS0_PADDING{Padding: make([]byte, 8)})),
		"cookie":  base(withOpt(&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"})),
		"ecs": base(withOpt(&dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24,
			Address: net.IPv4(192, 0, 2, 0).To4()})),
		"edns version 1": base(func(m *dns.Msg) { m.SetEdns0(1232, false).IsEdns0().SetVersion(1) }),
		"edns Z flag":    base(func(m *dns.Msg) { m.SetEdns0(1232, false).IsEdns0().SetZ(1) }),
		"two OPTs":       base(func(m *dns.Msg) { m.SetEdns0(1232, false); m.Extra = append(m.Extra, m.Extra[0]) }),
		"extra A": base(func(m *dns.Msg) {
			rr, _ := dns.NewRR("x. 1 IN A 192.0.2.1")
			m.Extra = append(m.Extra, rr)
		}),
		"answer section": base(func(m *dns.Msg) { rr, _ := dns.NewRR("x. 1 IN A 192.0.2.1"); m.Answer = []dns.RR{rr} }),
		"notify":         base(func(m *dns.Msg) { m.Opcode = dns.OpcodeNotify }),
		"response":       base(func(m *dns.Msg) { m.Response = true }),
		"two questions":  base(func(m *dns.Msg) { m.Question = append(m.Question, m.Question[0]) }),
		"trailing octet": append(base(nil), 0),
		"pointer":        pointer,
		"big, no EDNS":   func() []byte { b, _ := new(dns.Msg).SetQuestion("big.lab.test.", dns.TypeTXT).Pack(); return b }(),
		"out of zone":    func() []byte { b, _ := new(dns.Msg).SetQuestion("example.com.", dns.TypeA).Pack(); return b }(),
	}
	srv, err := StartUDP(a, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	u := newUDPAsker(t, srv.Addr())
	var key [maxFastKey]byte
	for name, b := range tests {
		for range 2 { // and not from the cache the second time
			if e, _ := a.fastAnswer(b, defaultUDPSize, &key); e != nil {
				t.Errorf("%s: fast path answered", name)
			}
		}
		want := udpReply(context.Background(), a, b, nil, defaultUDPSize)
		if want == nil {
			continue // dropped (a response)
		}
		if got := u.ask(t, b); !bytes.Equal(got, want) {
			t.Errorf("%s: server answered\n%x, slow path\n%x", name, got, want)
		}
	}
}

// TestFastPathSetZonesInvalidates changes the zones and asks at once: the

// answer must come from the new zones, never from a compiled answer of

// the old ones.

// TestFastPathConcurrentSetZones asks from several goroutines while the

// zones change (run with -race): every answer carries a serial that was

// served, and after the last change only the last one.

// TestFastPathLogsAndCounts checks that queries the fast path answers are

// logged and counted exactly as the slow path logs and counts them.

// gatherCounts renders the query counters and the latency histogram's

// count of m.

// BenchmarkUDPFastAnswer is the fast path's work per query, socket aside:

// parse, look up, copy and patch the ID. It must not allocate.

func BenchmarkUDPFastAnswer(b *testing.B) {
	a := testAuthority(b)
	q := queryVariant{edns: 1232}.pack(b, dns.Question{Name: "svc.lab.test.", Qtype: dns.TypeHTTPS, Qclass: dns.ClassINET}, 1)
	var key [maxFastKey]byte
	out := make([]byte, 0, 1232)
	b.ReportAllocs()
	for b.Loop() {
		e, fq := a.fastAnswer(q, defaultUDPSize, &key)
		if e == nil {
			b.Fatal("declined")
		}
		out = appendFast(out[:0], e, fq)
	}
}

// BenchmarkUDPServer is one query and answer over loopback UDP, through

// the fast path and through the slow path, with the metrics on.

// TestUDPBatchBurst sends bursts of queries without waiting, so that the

// server reads and answers them in batches, over IPv4 and IPv6, fast and

// slow queries mixed: every answer is the slow path's, and the query log

// names the client as the slow path does.

// TestFastPathCacheBounded floods the cache with names that do not exist:

// it stops at maxFastEntries, the answers compiled before stay served,

// and new names are declined (left to the slow path) without compiling.

func TestFastPathCacheBounded(t *testing.T) {
	a := testAuthority(t)
	var key [maxFastKey]byte
	ask := func(name string) *fastEntry {
		b := queryVariant{}.pack(t, dns.Question{Name: name, Qtype: dns.TypeA, Qclass: dns.ClassINET}, 1)
		e, _ := a.fastAnswer(b, defaultUDPSize, &key)
		return e
	}
	if ask("public.lab.test.") == nil {
		t.Fatal("public.lab.test A not answered")
	}
	for i := range maxFastEntries + 100 {
		ask(fmt.Sprintf("n%d.lab.test.", i))
	}
	if n := len(a.load().fast.m); n != maxFastEntries {
		t.Errorf("%d answers cached, want %d", n, maxFastEntries)
	}
	if ask("public.lab.test.") == nil {
		t.Error("a cached answer was lost")
	}
	if ask("another.lab.test.") != nil {
		t.Error("a new name was answered by a full cache")
	}
}

// TestFastPathPublisherUpdate publishes new ECH configs: the very next

// UDP answer carries them (the compiled answer of the old ones is gone

// with the zones it came from), for every variant of the query.
