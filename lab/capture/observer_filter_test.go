package capture

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/echlab/echlab/client"
	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/internal/testutil"
)

// funcFilter is a Filter made of two funcs; it hands every Stream call
// to the test on streams, and every Datagram call on datagrams.
type funcFilter struct {
	stream    func(Flow, []byte) Verdict
	datagram  func(Flow, bool, []byte) ([]byte, Verdict)
	streams   chan streamCall
	datagrams chan datagramCall
}

type streamCall struct {
	flow  Flow
	first []byte
}

type datagramCall struct {
	flow     Flow
	toServer bool
	b        []byte
}

func newFuncFilter(stream func(Flow, []byte) Verdict, datagram func(Flow, bool, []byte) ([]byte, Verdict)) *funcFilter {
	return &funcFilter{stream: stream, datagram: datagram, streams: make(chan streamCall, 64), datagrams: make(chan datagramCall, 64)}
}

func (f *funcFilter) Stream(fl Flow, first []byte) Verdict {
	f.streams <- streamCall{fl, bytes.Clone(first)}
	return f.stream(fl, first)
}

func (f *funcFilter) Datagram(fl Flow, toServer bool, b []byte) ([]byte, Verdict) {
	f.datagrams <- datagramCall{fl, toServer, bytes.Clone(b)}
	return f.datagram(fl, toServer, b)
}

func verdict(v Verdict) func(Flow, []byte) Verdict { return func(Flow, []byte) Verdict { return v } }

func passDatagram(_ Flow, _ bool, b []byte) ([]byte, Verdict) { return b, Pass }

// nextStream returns the next Stream call, failing after a deadline.
func (f *funcFilter) nextStream(t *testing.T) streamCall {
	t.Helper()
	select {
	case c := <-f.streams:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("Filter.Stream was not called")
		return streamCall{}
	}
}

// clientHello returns the TLS records of crypto/tls's ClientHello for
// name.
func clientHello(t *testing.T, name string) []byte {
	t.Helper()
	records, err := client.CaptureClientHello(&tls.Config{ServerName: name, MinVersion: tls.VersionTLS13})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ech.ParseClientHelloRecords(records); err != nil {
		t.Fatalf("crypto/tls wrote no ClientHello: %v", err)
	}
	return records
}

// sniOf parses a ClientHello from TLS records and returns its SNI.
func sniOf(t *testing.T, records []byte) string {
	t.Helper()
	ch, err := ech.ParseClientHelloRecords(records)
	if err != nil {
		t.Fatalf("Stream's first bytes are not a whole ClientHello: %v", err)
	}
	return ch.ServerName
}

// backend is a TCP server whose accepted connections the test takes from
// conns, in the order they were accepted.
func backend(t *testing.T) (string, chan net.Conn) {
	conns := make(chan net.Conn, 16)
	ln := testutil.ListenTCP(t)
	testutil.AcceptEach(t, ln, func(c net.Conn) {
		conns <- c
		<-t.Context().Done()
	})
	return ln.Addr().String(), conns
}

// neverDialed checks that the backend accepted no connection before one
// the test makes now: connections are accepted in the order they were
// made, so one dialed by the relay earlier would come first.
func neverDialed(t *testing.T, addr string, conns chan net.Conn) {
	t.Helper()
	marker, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer marker.Close()
	select {
	case c := <-conns:
		if c.RemoteAddr().String() != marker.LocalAddr().String() {
			t.Fatalf("the backend was dialed (from %s)", c.RemoteAddr())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the backend accepted nothing")
	}
}

func newObserver(t *testing.T, f Filter) (*Observer, *Recorder) {
	rec := NewRecorder()
	o := &Observer{WrapConn: rec.WrapConn, WrapPacketConn: rec.WrapPacketConn, Filter: f}
	t.Cleanup(func() { o.Close() })
	return o, rec
}

func dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
	return c.(*net.TCPConn)
}

// recordedConn returns the events the Recorder holds for the connection
// whose client end is client.
func recordedEvents(t *testing.T, rec *Recorder, client net.Addr) []ScriptEvent {
	t.Helper()
	conns, events := rec.Script()
	want := addrPortOf(client)
	id := -1
	for i, c := range conns {
		if netip.AddrPortFrom(c.Client.Addr().Unmap(), c.Client.Port()) == want {
			id = i
		}
	}
	if id < 0 {
		t.Fatalf("the Recorder holds no connection from %s", want)
	}
	var out []ScriptEvent
	for _, e := range events {
		if e.Conn == id {
			out = append(out, e)
		}
	}
	return out
}

// checkRecordedHelloAndEnd checks that the Recorder saw hello come from
// the client and then the relay's end of the connection: an RST when rst
// (see reset), else a FIN.
func checkRecordedHelloAndEnd(t *testing.T, rec *Recorder, client net.Addr, hello []byte, rst bool) {
	t.Helper()
	var fromClient []byte
	relayEnd := false
	for _, e := range recordedEvents(t, rec, client) {
		switch {
		case e.Kind == EventData && e.FromClient:
			fromClient = append(fromClient, e.Data...)
		case e.Kind == EventData:
			t.Errorf("the Recorder saw %d bytes sent to the client", len(e.Data))
		case e.Kind == EventClose && !e.FromClient && !rst, e.Kind == EventReset && !e.FromClient && rst:
			relayEnd = true
		case e.Kind == EventReset:
			t.Errorf("the Recorder saw an RST (from the client: %v), want none", e.FromClient)
		}
	}
	if !bytes.Equal(fromClient, hello) {
		t.Errorf("the Recorder saw %d bytes from the client, want the %d of the ClientHello", len(fromClient), len(hello))
	}
	if !relayEnd {
		t.Error("the Recorder did not see the relay end the connection")
	}
	// The synthesized capture: the client's bytes, then a FIN or an RST
	// from the relay.
	var pcap bytes.Buffer
	if err := rec.WritePcapng(&pcap); err != nil {
		t.Fatal(err)
	}
	pkts, _, err := readAll(&pcap)
	if err != nil {
		t.Fatal(err)
	}
	cl := addrPortOf(client)
	var sent []byte
	end := false
	endFlag := uint8(TCPFIN)
	if rst {
		endFlag = TCPRST
	}
	for _, p := range pkts {
		src := netip.AddrPortFrom(p.Src.Addr().Unmap(), p.Src.Port())
		dst := netip.AddrPortFrom(p.Dst.Addr().Unmap(), p.Dst.Port())
		switch {
		case src == cl:
			sent = append(sent, p.Payload...)
		case dst == cl && p.Flags&endFlag != 0:
			end = true
		case p.Flags&TCPRST != 0:
			t.Errorf("the capture shows an RST, want a FIN: %+v", p)
		case dst == cl && len(p.Payload) > 0:
			t.Errorf("the capture shows %d bytes sent to the client", len(p.Payload))
		}
	}
	if !bytes.Equal(sent, hello) || !end {
		t.Errorf("the capture shows %d bytes from the client (want %d) and the relay's end (RST %v): %v", len(sent), len(hello), rst, end)
	}
}

// TestFilterPass relays a ClientHello and random bytes both ways through
// a relay whose Filter passes: the bytes arrive unchanged, Stream sees the
// whole ClientHello first, and its Flow names the client, relay, backend,
// protocol and role.
func TestFilterPass(t *testing.T) {
	f := newFuncFilter(verdict(Pass), passDatagram)
	o, _ := newObserver(t, f)
	baddr, conns := backend(t)
	addr, err := o.RelayTCP("https/shared", baddr)
	if err != nil {
		t.Fatal(err)
	}
	hello := clientHello(t, "public.lab.test")
	up := make([]byte, 100<<10)
	down := make([]byte, 100<<10)
	rand.Read(up)
	rand.Read(down)
	c := dial(t, addr)
	if _, err := c.Write(append(bytes.Clone(hello), up...)); err != nil {
		t.Fatal(err)
	}
	call := f.nextStream(t)
	if !bytes.Equal(call.first[:len(hello)], hello) || sniOf(t, call.first) != "public.lab.test" {
		t.Fatalf("Stream got %d bytes, not starting with the ClientHello", len(call.first))
	}
	wantFlow := Flow{Role: "https/shared", Proto: "tcp", Client: addrPortOf(c.LocalAddr()), Relay: netip.MustParseAddrPort(addr), Backend: baddr}
	if call.flow != wantFlow {
		t.Fatalf("Flow %+v, want %+v", call.flow, wantFlow)
	}
	s := <-conns
	got := make([]byte, len(hello)+len(up))
	if _, err := io.ReadFull(s, got); err != nil || !bytes.Equal(got, append(bytes.Clone(hello), up...)) {
		t.Fatalf("the backend got other bytes than the client sent (%v)", err)
	}
	if _, err := s.Write(down); err != nil {
		t.Fatal(err)
	}
	s.(*net.TCPConn).CloseWrite()
	back, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(back, down) {
		t.Fatalf("the client got %d bytes (%v), want the backend's %d", len(back), err, len(down))
	}
}

// TestFilterDrop sends a real ClientHello through a relay whose Filter
// drops it: the client's handshake times out, the backend is never
// dialed, the held connection ends when the client closes it, the
// Recorder saw the ClientHello and the end, and a held connection the
// client does not close ends when the Observer closes, promptly, its
// goroutines gone.
func TestFilterDrop(t *testing.T) {
	f := newFuncFilter(verdict(Drop), passDatagram)
	o, rec := newObserver(t, f)
	before := testutil.Goroutines()
	baddr, conns := backend(t)
	addr, err := o.RelayTCP("https/shared", baddr)
	if err != nil {
		t.Fatal(err)
	}
	waitTables(t, o, 1)

	c := dial(t, addr)
	c.SetDeadline(time.Now().Add(300 * time.Millisecond)) //nolint:errcheck
	tc := tls.Client(c, &tls.Config{ServerName: "secret.lab.test", MinVersion: tls.VersionTLS13})
	err = tc.Handshake()
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("handshake through a dropping relay: %v, want a timeout", err)
	}
	call := f.nextStream(t)
	if sni := sniOf(t, call.first); sni != "secret.lab.test" {
		t.Fatalf("Stream saw SNI %q", sni)
	}
	if open, _ := o.tables(); open != 2 {
		t.Fatalf("%d entries in the observer's table while the connection is held, want 2", open)
	}
	c.Close()
	waitTables(t, o, 1) // the held connection ended with the client's
	neverDialed(t, baddr, conns)
	checkRecordedHelloAndEnd(t, rec, c.LocalAddr(), call.first, false)

	// A held connection the client keeps open ends with the Observer.
	c2 := dial(t, addr)
	if _, err := c2.Write(clientHello(t, "secret.lab.test")); err != nil {
		t.Fatal(err)
	}
	f.nextStream(t)
	if _, err := c2.Write([]byte("more bytes into the hole")); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- o.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Close still waiting after 2s with a held connection")
	}
	// Frames that have returned before the goroutine tells the wait group
	// it is done (the goroutine itself may still be exiting).
	if left := testutil.NewGoroutines(before, "lab/capture.hold(", "lab/capture.(*Observer).filterTCP(", "lab/capture.readFirst("); len(left) > 0 {
		t.Fatalf("goroutines left after Close:\n%s", strings.Join(left, "\n\n"))
	}
	if _, err := c2.Read(make([]byte, 1)); err == nil {
		t.Fatal("the held connection still open after Close")
	}
	neverDialed(t, baddr, conns)
}

// TestFilterReset: a relay whose Filter resets gives the client an RST
// (ECONNRESET) at once, never dials the backend, and the Recorder saw the
// ClientHello and the end of the connection.
func TestFilterReset(t *testing.T) {
	f := newFuncFilter(verdict(Reset), passDatagram)
	o, rec := newObserver(t, f)
	baddr, conns := backend(t)
	addr, err := o.RelayTCP("https/shared", baddr)
	if err != nil {
		t.Fatal(err)
	}
	hello := clientHello(t, "secret.lab.test")
	c := dial(t, addr)
	c.SetDeadline(time.Now().Add(2 * time.Second)) //nolint:errcheck
	if _, err := c.Write(hello); err != nil {
		t.Fatal(err)
	}
	n, err := c.Read(make([]byte, 100))
	if n != 0 || !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after a reset: %d bytes, %v; want ECONNRESET", n, err)
	}
	waitTables(t, o, 1)
	neverDialed(t, baddr, conns)
	checkRecordedHelloAndEnd(t, rec, c.LocalAddr(), hello, true)
}

// TestFilterResetAfterReply: the backend receives the ClientHello, and
// when it answers the client gets a reset, not the answer.
func TestFilterResetAfterReply(t *testing.T) {
	f := newFuncFilter(verdict(ResetAfterReply), passDatagram)
	o, rec := newObserver(t, f)
	baddr, conns := backend(t)
	addr, err := o.RelayTCP("https/split", baddr)
	if err != nil {
		t.Fatal(err)
	}
	hello := clientHello(t, "public.lab.test")
	c := dial(t, addr)
	if _, err := c.Write(hello); err != nil {
		t.Fatal(err)
	}
	s := <-conns
	s.SetDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
	got := make([]byte, len(hello))
	if _, err := io.ReadFull(s, got); err != nil || !bytes.Equal(got, hello) {
		t.Fatalf("the backend did not get the ClientHello: %v", err)
	}
	if _, err := s.Write([]byte("server hello bytes")); err != nil {
		t.Fatal(err)
	}
	n, err := c.Read(make([]byte, 100))
	if n != 0 || !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("client read: %d bytes, %v; want a reset and none of the server's bytes", n, err)
	}
	if _, err := s.Read(make([]byte, 1)); err == nil {
		t.Fatal("the backend connection is still open after the reset")
	}
	waitTables(t, o, 1)
	checkRecordedHelloAndEnd(t, rec, c.LocalAddr(), hello, true)
}

// splitRecords re-frames the handshake message of records in two TLS
// records, cut at the given offset of the message.
func splitRecords(t *testing.T, records []byte, at int) []byte {
	msg, _, err := ech.HandshakeFromRecords(records)
	if err != nil {
		t.Fatal(err)
	}
	rec := func(b []byte) []byte { return append([]byte{0x16, 3, 1, byte(len(b) >> 8), byte(len(b))}, b...) }
	return append(rec(msg[:at]), rec(msg[at:])...)
}

// TestFilterClientHelloSplit: a ClientHello in two TLS records, sent in
// several TCP writes, reaches Stream whole (and the backend intact).
func TestFilterClientHelloSplit(t *testing.T) {
	f := newFuncFilter(verdict(Pass), passDatagram)
	o, _ := newObserver(t, f)
	baddr, conns := backend(t)
	addr, err := o.RelayTCP("https/shared", baddr)
	if err != nil {
		t.Fatal(err)
	}
	records := splitRecords(t, clientHello(t, "secret.lab.test"), 100)
	c := dial(t, addr)
	// Cuts inside the first header, inside the first record, at the
	// second record's header and inside the second record.
	prev := 0
	for _, cut := range []int{3, 60, 105, 107, 200, len(records)} {
		if _, err := c.Write(records[prev:cut]); err != nil {
			t.Fatal(err)
		}
		prev = cut
		time.Sleep(20 * time.Millisecond) // let the relay read each piece alone
	}
	call := f.nextStream(t)
	if !bytes.Equal(call.first, records) {
		t.Fatalf("Stream got %d bytes, want the %d of both records", len(call.first), len(records))
	}
	if sni := sniOf(t, call.first); sni != "secret.lab.test" {
		t.Fatalf("SNI %q", sni)
	}
	s := <-conns
	got := make([]byte, len(records))
	if _, err := io.ReadFull(s, got); err != nil || !bytes.Equal(got, records) {
		t.Fatalf("the backend got other bytes: %v", err)
	}
}

// TestFilterClientHelloCap: a handshake message longer than MaxFirstBytes
// reaches Stream cut at MaxFirstBytes, and the backend gets all of it.
func TestFilterClientHelloCap(t *testing.T) {
	f := newFuncFilter(verdict(Pass), passDatagram)
	o, _ := newObserver(t, f)
	baddr, conns := backend(t)
	addr, err := o.RelayTCP("https/shared", baddr)
	if err != nil {
		t.Fatal(err)
	}
	body := 100 << 10
	msg := append([]byte{1, byte(body >> 16), byte(body >> 8), byte(body)}, make([]byte, body)...)
	records := ech.MarshalRecords(msg)
	c := dial(t, addr)
	go c.Write(records) //nolint:errcheck // the backend's read checks it
	call := f.nextStream(t)
	if len(call.first) != MaxFirstBytes || !bytes.Equal(call.first, records[:MaxFirstBytes]) {
		t.Fatalf("Stream got %d bytes, want the first %d", len(call.first), MaxFirstBytes)
	}
	s := <-conns
	got := make([]byte, len(records))
	if _, err := io.ReadFull(s, got); err != nil || !bytes.Equal(got, records) {
		t.Fatalf("the backend got other bytes: %v", err)
	}
}

// TestFilterNonTLSFirstBytes: bytes that are not a TLS record reach
// Stream as the first read gave them.
func TestFilterNonTLSFirstBytes(t *testing.T) {
	f := newFuncFilter(verdict(Pass), passDatagram)
	o, _ := newObserver(t, f)
	baddr, conns := backend(t)
	addr, err := o.RelayTCP("dns/doh", baddr)
	if err != nil {
		t.Fatal(err)
	}
	req := []byte("GET /dns-query HTTP/1.1\r\nHost: x\r\n\r\n")
	c := dial(t, addr)
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	if call := f.nextStream(t); !bytes.Equal(call.first, req) || call.flow.Role != "dns/doh" {
		t.Fatalf("Stream got %q for %q", call.first, call.flow.Role)
	}
	s := <-conns
	got := make([]byte, len(req))
	if _, err := io.ReadFull(s, got); err != nil || !bytes.Equal(got, req) {
		t.Fatalf("the backend got %q, %v", got, err)
	}
}

// TestFilterUDP rewrites datagrams both ways and drops some each way.
func TestFilterUDP(t *testing.T) {
	ub, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ub.Close() })
	seen := make(chan string, 16)
	go func() {
		buf := make([]byte, 2048)
		for {
			k, from, err := ub.ReadFrom(buf)
			if err != nil {
				return
			}
			seen <- string(buf[:k])
			ub.WriteTo(buf[:k], from) //nolint:errcheck
		}
	}()
	f := newFuncFilter(verdict(Pass), func(_ Flow, toServer bool, b []byte) ([]byte, Verdict) {
		switch {
		case toServer && string(b) == "drop":
			return nil, Drop
		case toServer && string(b) == "reset":
			return nil, Reset
		case !toServer && strings.HasSuffix(string(b), "dropback"):
			return nil, Drop
		case toServer:
			return append([]byte("c2s:"), b...), Pass
		}
		return append([]byte("s2c:"), b...), Pass
	})
	o, _ := newObserver(t, f)
	addr, err := o.RelayUDP("dns/doq", ub.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
	exchange := func(send, want string) {
		t.Helper()
		if _, err := c.Write([]byte(send)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 100)
		n, err := c.Read(buf)
		if err != nil || string(buf[:n]) != want {
			t.Fatalf("sent %q, got %q (%v), want %q", send, buf[:n], err, want)
		}
	}
	for _, s := range []string{"drop", "reset", "dropback"} {
		if _, err := c.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	exchange("ping", "s2c:c2s:ping")
	for _, want := range []string{"c2s:dropback", "c2s:ping"} {
		if got := <-seen; got != want {
			t.Fatalf("the backend got %q, want %q", got, want)
		}
	}
	want := Flow{Role: "dns/doq", Proto: "udp", Client: addrPortOf(c.LocalAddr()), Relay: netip.MustParseAddrPort(addr), Backend: ub.LocalAddr().String()}
	var toServer, toClient []string
	for range 6 {
		d := <-f.datagrams
		if d.flow != want {
			t.Fatalf("Flow %+v, want %+v", d.flow, want)
		}
		if d.toServer {
			toServer = append(toServer, string(d.b))
		} else {
			toClient = append(toClient, string(d.b))
		}
	}
	if w := []string{"drop", "reset", "dropback", "ping"}; !slices.Equal(toServer, w) {
		t.Fatalf("Datagram saw %q toward the server, want %q", toServer, w)
	}
	if w := []string{"c2s:dropback", "c2s:ping"}; !slices.Equal(toClient, w) {
		t.Fatalf("Datagram saw %q toward the client, want %q", toClient, w)
	}
}

// dnsTCPServer answers each DNS-over-TCP query with an A record of
// 192.0.2.1 for its name, and hands each query name to the test.
func dnsTCPServer(t *testing.T) (string, chan string) {
	names := make(chan string, 16)
	addr := testutil.ServeEach(t, func(c net.Conn) {
		for {
			var hdr [2]byte
			if _, err := io.ReadFull(c, hdr[:]); err != nil {
				return
			}
			msg := make([]byte, int(hdr[0])<<8|int(hdr[1]))
			if _, err := io.ReadFull(c, msg); err != nil {
				return
			}
			q := new(dns.Msg)
			if err := q.Unpack(msg); err != nil {
				t.Errorf("the DNS server got a bad message: %v", err)
				return
			}
			names <- q.Question[0].Name
			r := new(dns.Msg)
			r.SetReply(q)
			r.Answer = append(r.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, 1)})
			b, _ := r.Pack()
			if _, err := c.Write(append([]byte{byte(len(b) >> 8), byte(len(b))}, b...)); err != nil {
				return
			}
		}
	})
	return addr, names
}

func dnsQuery(t *testing.T, id uint16, name string) []byte {
	q := new(dns.Msg)
	q.SetQuestion(name, dns.TypeA)
	q.Id = id
	b, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte{byte(len(b) >> 8), byte(len(b))}, b...)
}

func readDNS(t *testing.T, c net.Conn) *dns.Msg {
	t.Helper()
	var hdr [2]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		t.Fatal(err)
	}
	msg := make([]byte, int(hdr[0])<<8|int(hdr[1]))
	if _, err := io.ReadFull(c, msg); err != nil {
		t.Fatal(err)
	}
	m := new(dns.Msg)
	if err := m.Unpack(msg); err != nil {
		t.Fatalf("the client got a bad DNS message (length prefix wrong?): %v", err)
	}
	return m
}

// TestFilterDo53TCP: on a dns/do53 TCP relay each message goes through
// Datagram (Stream is not called): rewrites of another length both ways
// get the right prefix, two queries in one write are two messages, and a
// dropped message is skipped while the connection goes on.
func TestFilterDo53TCP(t *testing.T) {
	f := newFuncFilter(func(Flow, []byte) Verdict {
		t.Error("Stream called on a dns/do53 relay")
		return Pass
	}, func(_ Flow, toServer bool, b []byte) ([]byte, Verdict) {
		m := new(dns.Msg)
		if err := m.Unpack(b); err != nil {
			t.Errorf("Datagram got a bad message: %v", err)
			return nil, Drop
		}
		switch {
		case toServer && m.Question[0].Name == "drop.test.":
			return nil, Drop
		case toServer && m.Question[0].Name == "a.test.":
			m.Question[0].Name = "a-much-longer-name.test."
		case !toServer && m.Id == 3:
			return nil, Reset
		case !toServer:
			m.Answer[0].(*dns.A).A = net.IPv4(198, 51, 100, 7)
			m.Extra = append(m.Extra, &dns.TXT{Hdr: dns.RR_Header{Name: "x.", Rrtype: dns.TypeTXT, Class: dns.ClassINET}, Txt: []string{"rewritten"}})
		}
		out, err := m.Pack()
		if err != nil {
			t.Error(err)
		}
		return out, Pass
	})
	o, _ := newObserver(t, f)
	baddr, names := dnsTCPServer(t)
	addr, err := o.RelayTCP(RoleDo53, baddr)
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, addr)
	pipelined := append(append(dnsQuery(t, 1, "a.test."), dnsQuery(t, 9, "drop.test.")...), dnsQuery(t, 2, "b.test.")...)
	if _, err := c.Write(pipelined); err != nil {
		t.Fatal(err)
	}
	for _, want := range []uint16{1, 2} {
		m := readDNS(t, c)
		if m.Id != want || len(m.Answer) != 1 || !m.Answer[0].(*dns.A).A.Equal(net.IPv4(198, 51, 100, 7)) || len(m.Extra) != 1 {
			t.Fatalf("answer %d: %v", want, m)
		}
	}
	for _, want := range []string{"a-much-longer-name.test.", "b.test."} {
		if got := <-names; got != want {
			t.Fatalf("the server got %q, want %q", got, want)
		}
	}
	// The answer to id 3 is dropped; the connection goes on.
	if _, err := c.Write(append(dnsQuery(t, 3, "c.test."), dnsQuery(t, 4, "d.test.")...)); err != nil {
		t.Fatal(err)
	}
	if m := readDNS(t, c); m.Id != 4 {
		t.Fatalf("got answer %d after a dropped one, want 4", m.Id)
	}
	c.CloseWrite()
	if b, err := io.ReadAll(c); err != nil || len(b) != 0 {
		t.Fatalf("after the client's half-close: %q, %v; want a plain end", b, err)
	}
	d := <-f.datagrams
	want := Flow{Role: RoleDo53, Proto: "tcp", Client: addrPortOf(c.LocalAddr()), Relay: netip.MustParseAddrPort(addr), Backend: baddr}
	if d.flow != want || !d.toServer {
		t.Fatalf("first Datagram call: %+v toServer %v, want %+v toServer", d.flow, d.toServer, want)
	}
}

// TestFilterSetFilter: SetFilter applies to connections accepted after it,
// and SetFilter(nil) brings the plain relay back.
func TestFilterSetFilter(t *testing.T) {
	o, _ := newObserver(t, nil)
	baddr, conns := backend(t)
	addr, err := o.RelayTCP("https/shared", baddr)
	if err != nil {
		t.Fatal(err)
	}
	f := newFuncFilter(verdict(Reset), passDatagram)
	o.SetFilter(f)
	c := dial(t, addr)
	c.Write([]byte("x")) //nolint:errcheck
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("after SetFilter: %v, want a reset", err)
	}
	o.SetFilter(nil)
	c2 := dial(t, addr)
	c2.Write([]byte("y")) //nolint:errcheck
	s := <-conns
	b := make([]byte, 1)
	if _, err := io.ReadFull(s, b); err != nil || b[0] != 'y' {
		t.Fatalf("after SetFilter(nil) the backend got %q, %v", b, err)
	}
	select {
	case <-f.streams: // the reset connection's
	default:
		t.Fatal("the filter saw nothing")
	}
	select {
	case call := <-f.streams:
		t.Fatalf("the removed filter saw %q", call.first)
	default:
	}
}
