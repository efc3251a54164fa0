package resolver

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

type udpAsker struct {
	c   net.Conn
	buf []byte
}

func newUDPAsker(t testing.TB, addr net.Addr) *udpAsker {
	t.Helper()
	c, err := net.Dial("udp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &udpAsker{c: c, buf: make([]byte, 65535)}
}

func (u *udpAsker) ask(t testing.TB, b []byte) []byte {
	t.Helper()
	if _, err := u.c.Write(b); err != nil {
		t.Fatal(err)
	}
	u.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		n, err := u.c.Read(u.buf)
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		if n >= 2 && bytes.Equal(u.buf[:2], b[:2]) {
			return append([]byte(nil), u.buf[:n]...)
		}
	}
}

func TestFastPathMatchesSlowOverSockets(t *testing.T) {
	for _, portable := range []bool{false, true} {
		t.Run(map[bool]string{false: "fastLoop", true: "fastLoopPortable"}[portable], func(t *testing.T) {
			testFastPathMatchesSlowOverSockets(t, portable)
		})
	}
}

func startPortableUDP(t testing.TB, h Handler) *UDPServer {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &UDPServer{conn: conn, h: h, maxSize: defaultUDPSize}
	s.fast, s.obs = fastChain(h)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.fastLoopPortable(conn.(*net.UDPConn))
	}()
	return s
}

func testFastPathMatchesSlowOverSockets(t *testing.T, portable bool) {
	a := testAuthority(t)
	var fastSrv *UDPServer
	if portable {
		fastSrv = startPortableUDP(t, a)
	} else {
		var err error
		if fastSrv, err = StartUDP(a, "", 0); err != nil {
			t.Fatal(err)
		}
	}
	defer fastSrv.Close()
	slowSrv, err := StartUDP(HandlerFunc(a.Answer), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer slowSrv.Close()
	if fastSrv.fast == nil || slowSrv.fast != nil {
		t.Fatal("fast path not chosen as expected")
	}
	fc, sc := newUDPAsker(t, fastSrv.Addr()), newUDPAsker(t, slowSrv.Addr())
	id := uint16(0)
	for range 2 {
		for _, q := range zoneQuestions(a.Zones()) {
			for _, v := range queryVariants {
				id++
				b := v.pack(t, q, id)
				if got, want := fc.ask(t, b), sc.ask(t, b); !bytes.Equal(got, want) {
					t.Fatalf("%s %s %s:\nfast %x\nslow %x", q.Name, dns.Type(q.Qtype), v.name, got, want)
				}
			}
		}
	}
}

func TestUDPCompressedLikeTCP(t *testing.T) {
	r := startResolver(t, nil)
	slowSrv, err := StartUDP(HandlerFunc(r.Handler.Answer), "", udpMaxSize(r.Authority))
	if err != nil {
		t.Fatal(err)
	}
	defer slowSrv.Close()
	if s := r.closers[0].(*UDPServer); s.fast == nil {
		t.Fatal("the resolver's UDP server does not take the fast path")
	}
	paths := map[string]*udpAsker{"fast": newUDPAsker(t, r.Addr(TransportUDP)), "slow": newUDPAsker(t, slowSrv.Addr())}
	tcp, err := net.Dial("tcp", r.Addr(TransportTCP).String())
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	compared := 0
	for i, q := range zoneQuestions(r.Authority.Zones()) {
		for _, v := range queryVariants[:5] {
			b := v.pack(t, q, uint16(i))
			overTCP := askTCP(t, tcp, b)
			for name, u := range paths {
				overUDP := u.ask(t, b)
				if overUDP[2]&0x02 != 0 { // TC=1
					if len(overTCP) <= udpSize(decodeQuery(b), defaultUDPSize) {
						t.Errorf("%s: %s %s %s truncated over UDP though %d octets fit", name, q.Name, dns.Type(q.Qtype), v.name, len(overTCP))
					}
					continue
				}
				compared++
				if !bytes.Equal(overUDP, overTCP) {
					t.Fatalf("%s: %s %s %s:\nudp %x\ntcp %x", name, q.Name, dns.Type(q.Qtype), v.name, overUDP, overTCP)
				}
			}
		}
	}
	if compared == 0 {
		t.Fatal("nothing compared")
	}
	// The figure: the HTTPS answer of svc.lab.test, 127 octets
	// over both.
	resp := exchange(t, "udp", r.Addr(TransportUDP), new(dns.Msg).SetQuestion("svc.lab.test.", dns.TypeHTTPS).SetEdns0(1232, false))
	if b, _ := resp.Pack(); len(b) >= 142 {
		t.Errorf("HTTPS answer %d octets over UDP", len(b))
	}
}

func askTCP(t testing.TB, c net.Conn, b []byte) []byte {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(frame(b)); err != nil {
		t.Fatal(err)
	}
	var l [2]byte
	if _, err := readFull(c, l[:]); err != nil {
		t.Fatal(err)
	}
	out := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := readFull(c, out); err != nil {
		t.Fatal(err)
	}
	return out
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func TestFastPathSetZonesInvalidates(t *testing.T) {
	a := testAuthority(t)
	srv, err := StartUDP(a, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	u := newUDPAsker(t, srv.Addr())
	q, _ := new(dns.Msg).SetQuestion("lab.test.", dns.TypeSOA).Pack()
	serial := func() uint32 {
		m := new(dns.Msg)
		if err := m.Unpack(u.ask(t, q)); err != nil || len(m.Answer) != 1 {
			t.Fatalf("SOA answer %v: %v", m, err)
		}
		return m.Answer[0].(*dns.SOA).Serial
	}
	zones := a.Zones()
	for i := range uint32(5) {
		serial() // compiled and cached
		if got := serial(); got != zones[0].Serial()+i {
			t.Fatalf("serial %d, want %d", got, zones[0].Serial()+i)
		}
		next := slices.Clone(a.Zones())
		next[0] = next[0].with(next[0].Origin, dns.TypeSOA, nil, zones[0].Serial()+i+1)
		if err := a.SetZones(next); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFastPathConcurrentSetZones(t *testing.T) {
	a := testAuthority(t)
	srv, err := StartUDP(a, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	base := a.Zones()[0].Serial()
	const changes = 50
	done := make(chan error, 4)
	answered := make(chan struct{}, 4*200)
	for g := range 4 {
		go func() {
			c, err := net.Dial("udp", srv.Addr().String())
			if err != nil {
				done <- err
				return
			}
			defer c.Close()
			buf := make([]byte, 1500)
			for i := range 200 {
				m := new(dns.Msg).SetQuestion("nope.lab.test.", dns.TypeA)
				m.Id = uint16(g<<12 | i)
				b, _ := m.Pack()
				c.Write(b)
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				n, err := c.Read(buf)
				if err != nil {
					done <- err
					return
				}
				r := new(dns.Msg)
				if err := r.Unpack(buf[:n]); err != nil || len(r.Ns) != 1 {
					done <- fmt.Errorf("answer %v: %v", r, err)
					return
				}
				if s := r.Ns[0].(*dns.SOA).Serial; s < base || s > base+changes {
					done <- fmt.Errorf("serial %d never served", s)
					return
				}
				answered <- struct{}{}
			}
			done <- nil
		}()
	}
	for i := range uint32(changes) {
		<-answered // a change between answers, not all before the first
		next := slices.Clone(a.Zones())
		next[0] = next[0].with(next[0].Origin, dns.TypeSOA, nil, base+i+1)
		if err := a.SetZones(next); err != nil {
			t.Fatal(err)
		}
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	r := exchange(t, "udp", srv.Addr(), new(dns.Msg).SetQuestion("nope.lab.test.", dns.TypeA))
	if s := r.Ns[0].(*dns.SOA).Serial; s != base+changes {
		t.Errorf("serial %d after the last change, want %d", s, base+changes)
	}
}

func TestFastPathLogsAndCounts(t *testing.T) {
	type run struct {
		log     strings.Builder
		metrics *Metrics
		srv     *UDPServer
	}
	a := testAuthority(t)
	start := func(fast bool) *run {
		r := &run{metrics: newMetrics()}
		h := withQueryLog(r.metrics.Wrap(a), &r.log, nil)
		if !fast {
			h = HandlerFunc(h.Answer)
		}
		var err error
		if r.srv, err = StartUDP(h, "", 0); err != nil {
			t.Fatal(err)
		}
		if (r.srv.fast != nil) != fast || (fast && len(r.srv.obs) != 2) {
			t.Fatalf("fast=%v: server fast %v, %d observers", fast, r.srv.fast != nil, len(r.srv.obs))
		}
		return r
	}
	runs := []*run{start(true), start(false)}
	qs := []dns.Question{{Name: "public.lab.test.", Qtype: dns.TypeA, Qclass: dns.ClassINET},
		{Name: "nope.lab.test.", Qtype: dns.TypeAAAA, Qclass: dns.ClassINET},
		{Name: "svc.lab.test.", Qtype: dns.TypeHTTPS, Qclass: dns.ClassINET},
		{Name: "example.com.", Qtype: dns.TypeA, Qclass: dns.ClassINET}}
	for _, r := range runs {
		u := newUDPAsker(t, r.srv.Addr())
		for i, q := range qs {
			for j, v := range queryVariants {
				u.ask(t, v.pack(t, q, uint16(i*100+j)))
			}
		}
		r.srv.Close()
	}
	logs := [2][]QueryLogEntry{}
	for i, r := range runs {
		for _, line := range strings.Split(strings.TrimSpace(r.log.String()), "\n") {
			var e QueryLogEntry
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			if !strings.HasPrefix(e.Client, "127.0.0.1:") || e.Time == "" {
				t.Errorf("entry %+v", e)
			}
			e.Time, e.LatencyUS, e.Client = "", 0, ""
			logs[i] = append(logs[i], e)
		}
	}
	if len(logs[0]) != len(qs)*len(queryVariants) || !slices.Equal(logs[0], logs[1]) {
		t.Errorf("fast path log\n%v\nslow path log\n%v", logs[0], logs[1])
	}
	counts := [2]string{}
	for i, r := range runs {
		counts[i] = gatherCounts(t, r.metrics)
	}
	if counts[0] != counts[1] || !strings.Contains(counts[0], `qtype="HTTPS",rcode="NOERROR",transport="udp"} 7`) {
		t.Errorf("fast path metrics\n%s\nslow path metrics\n%s", counts[0], counts[1])
	}
}

func gatherCounts(t *testing.T, m *Metrics) string {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "echlab_") {
			continue
		}
		for _, mt := range mf.GetMetric() {
			var labels []string
			for _, l := range mt.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			v := mt.GetCounter().GetValue()
			if h := mt.GetHistogram(); h != nil {
				v = float64(h.GetSampleCount())
			}
			fmt.Fprintf(&b, "%s{%s} %v\n", mf.GetName(), strings.Join(labels, ","), v)
		}
	}
	return b.String()
}

func BenchmarkUDPServer(b *testing.B) {
	a := testAuthority(b)
	for _, fast := range []bool{true, false} {
		b.Run(map[bool]string{true: "fast", false: "slow"}[fast], func(b *testing.B) {
			h := newMetrics().Wrap(a)
			if !fast {
				h = HandlerFunc(h.Answer)
			}
			srv, err := StartUDP(h, "", 0)
			if err != nil {
				b.Fatal(err)
			}
			defer srv.Close()
			c, err := net.Dial("udp", srv.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			q := queryVariant{edns: 1232}.pack(b, dns.Question{Name: "svc.lab.test.", Qtype: dns.TypeHTTPS, Qclass: dns.ClassINET}, 1)
			buf := make([]byte, 1232)
			b.ReportAllocs()
			for b.Loop() {
				c.Write(q)
				if _, err := c.Read(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestUDPBatchBurst(t *testing.T) {
	a := testAuthority(t)
	qs := zoneQuestions(a.Zones())
	for _, network := range []string{"127.0.0.1:0", "[::1]:0"} {
		t.Run(network, func(t *testing.T) {
			var log strings.Builder
			srv, err := StartUDP(withQueryLog(a, &log, nil), network, 0)
			if err != nil {
				t.Skipf("no %s: %v", network, err)
			}
			c, err := net.Dial("udp", srv.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			want := map[uint16][]byte{}
			buf := make([]byte, 65535)
			id := uint16(0)
			for start := 0; start < len(qs); start += 64 {
				for _, q := range qs[start:min(start+64, len(qs))] {
					id++
					b := queryVariants[int(id)%len(queryVariants)].pack(t, q, id)
					want[id] = udpReply(context.Background(), HandlerFunc(a.Answer), b, nil, defaultUDPSize)
					if want[id] == nil {
						t.Fatalf("no slow answer to %x", b)
					}
					c.Write(b)
				}
				for len(want) > 0 {
					c.SetReadDeadline(time.Now().Add(5 * time.Second))
					n, err := c.Read(buf)
					if err != nil {
						t.Fatalf("%d answers missing: %v", len(want), err)
					}
					got := buf[:n]
					w, ok := want[binary.BigEndian.Uint16(got)]
					if !ok || !bytes.Equal(got, w) {
						t.Fatalf("answer %x\nwant %x", got, w)
					}
					delete(want, binary.BigEndian.Uint16(got))
				}
			}
			srv.Close()
			lines := strings.Split(strings.TrimSpace(log.String()), "\n")
			if len(lines) != int(id) {
				t.Errorf("%d log lines for %d queries", len(lines), id)
			}
			for _, l := range lines {
				var e QueryLogEntry
				if err := json.Unmarshal([]byte(l), &e); err != nil || e.Client != c.LocalAddr().String() {
					t.Fatalf("log line %s: client is not %s (%v)", l, c.LocalAddr(), err)
				}
			}
		})
	}
}

func TestFastPathPublisherUpdate(t *testing.T) {
	dir, ks := newKeySetDir(t)
	r := publishingResolver(t, dir)
	u := newUDPAsker(t, r.Addr(TransportUDP))
	q := dns.Question{Name: "secret.lab.test.", Qtype: dns.TypeHTTPS, Qclass: dns.ClassINET}
	echOf := func(b []byte) []byte {
		m := new(dns.Msg)
		if err := m.Unpack(b); err != nil || len(m.Answer) != 1 {
			t.Fatalf("answer %v: %v", m, err)
		}
		return echParam(m.Answer[0].(*dns.HTTPS))
	}
	list := configList(t, ks)
	for i := range 3 {
		for j, v := range queryVariants {
			b := v.pack(t, q, uint16(i*100+j))
			for range 2 { // compiled, then from the cache
				if got := echOf(u.ask(t, b)); !bytes.Equal(got, list) {
					t.Fatalf("update %d, %s: ech=%x, want %x", i, v.name, got, list)
				}
			}
		}
		_, next := newKeySetDir(t)
		list = configList(t, next)
		if err := r.Publisher.Update("main", list); err != nil {
			t.Fatal(err)
		}
	}
}
