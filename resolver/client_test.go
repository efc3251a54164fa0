package resolver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"testing"

	"github.com/miekg/dns"
)

// TestClientTransports runs the stub client over all six transports
// against real servers on loopback.
func TestClientTransports(t *testing.T) {
	l := newLab(t)
	do53 := startDo53(t, l.h)
	dot, err := StartDoT(l.h, l.tlsOpts())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dot.Close() })
	doh, doh3 := startDoH(t, l, DoHOptions{TLSListenerOptions: l.tlsOpts()})
	doq := startDoQ(t, l, DoQOptions{TLSListenerOptions: l.tlsOpts()})

	cases := []struct {
		name      string
		url       string
		get, h1   bool
		protocol  string
		transport string
		wireID0   bool // DoH and DoQ send ID 0
		encrypted bool
	}{
		{"udp", "udp://" + do53, false, false, "udp", TransportUDP, false, false},
		{"tcp", "tcp://" + do53, false, false, "tcp", TransportTCP, false, false},
		{"tls", "tls://" + dot.Addr().String(), false, false, "tls", TransportDoT, false, true},
		{"https-post-h2", doh.URL(), false, false, "HTTP/2.0", TransportDoH, true, true},
		{"https-get-h2", doh.URL(), true, false, "HTTP/2.0", TransportDoH, true, true},
		{"https-post-h1", doh.URL(), false, true, "HTTP/1.1", TransportDoH, true, true},
		{"https-get-h1", doh.URL(), true, true, "HTTP/1.1", TransportDoH, true, true},
		{"h3-post", doh3.URL(), false, false, "HTTP/3.0", TransportDoH3, true, true},
		{"h3-get", doh3.URL(), true, false, "HTTP/3.0", TransportDoH3, true, true},
		{"quic", doq.URL(), false, false, "doq", TransportDoQ, true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := l.clientOpts()
			opts.UseGET, opts.HTTP1Only = tc.get, tc.h1
			c, err := NewClient(tc.url, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			for i := range 2 {
				resp, tm, err := ExchangeTimed(context.Background(), c, query("secret.lab.test.", dns.TypeHTTPS, 0x1234))
				if err != nil {
					t.Fatalf("exchange %d: %v", i, err)
				}
				checkHTTPSAnswer(t, resp, l.echList)
				if tm.Protocol != tc.protocol {
					t.Errorf("protocol %q, want %q", tm.Protocol, tc.protocol)
				}
				if reused := i == 1 && tc.name != "udp"; tm.Reused != reused {
					t.Errorf("exchange %d: Reused %v, want %v", i, tm.Reused, reused)
				}
				if i == 0 && tc.encrypted && tm.Handshake <= 0 {
					t.Errorf("no handshake time on a first exchange: %+v", tm)
				}
				s := l.h.last(t)
				if s.Meta.Transport != tc.transport {
					t.Errorf("server saw transport %q, want %q", s.Meta.Transport, tc.transport)
				}
				if wantID := map[bool]uint16{true: 0, false: 0x1234}[tc.wireID0]; s.ID != wantID {
					t.Errorf("query ID on the wire %#x, want %#x", s.ID, wantID)
				}
				if s.Padded != tc.encrypted || (tc.encrypted && s.Size%queryPadBlock != 0) {
					t.Errorf("query padded=%v size=%d; want padded=%v to a multiple of %d", s.Padded, s.Size, tc.encrypted, queryPadBlock)
				}
			}
		})
	}
}

func checkHTTPSAnswer(t *testing.T, resp *dns.Msg, echList []byte) {
	t.Helper()
	if resp.Id != 0x1234 || resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 1 {
		t.Fatalf("bad response: %v", resp)
	}
	h, ok := resp.Answer[0].(*dns.HTTPS)
	if !ok {
		t.Fatalf("answer is %T, want HTTPS", resp.Answer[0])
	}
	for _, kv := range h.Value {
		if e, ok := kv.(*dns.SVCBECHConfig); ok {
			if !bytes.Equal(e.ECH, echList) {
				t.Fatalf("ech= differs from the published ECHConfigList")
			}
			return
		}
	}
	t.Fatal("HTTPS answer has no ech=")
}

func startDoH(t *testing.T, l *lab, o DoHOptions) (*DoHServer, *DoH3Server) {
	t.Helper()
	doh, doh3, err := startDoHWithH3(l.h, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { doh.Close(); doh3.Close() })
	return doh, doh3
}

func startDoQ(t *testing.T, l *lab, o DoQOptions) *DoQServer {
	t.Helper()
	s, err := StartDoQ(l.h, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestClientUDPTruncation: a truncated UDP answer is retried over TCP.
func TestClientUDPTruncation(t *testing.T) {
	l := newLab(t)
	c, err := NewClient("udp://"+startDo53(t, l.h), l.clientOpts())
	if err != nil {
		t.Fatal(err)
	}
	resp, tm, err := ExchangeTimed(context.Background(), c, query("big.lab.test.", dns.TypeTXT, 7))
	if err != nil {
		t.Fatal(err)
	}
	if !tm.TCPFallback || tm.Protocol != "tcp" || resp.Truncated || len(resp.Answer) != 30 {
		t.Fatalf("fallback=%v protocol=%s tc=%v answers=%d", tm.TCPFallback, tm.Protocol, resp.Truncated, len(resp.Answer))
	}
}

// TestClientECH: DoT, DoH, DoH3 and DoQ listeners with ECH keys accept
// ECH from the stub client.
func TestClientECH(t *testing.T) {
	l := newLab(t)
	o := l.tlsOpts()
	o.ECHKeys = l.echKeys
	dot, err := StartDoT(l.h, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dot.Close() })
	doh, doh3 := startDoH(t, l, DoHOptions{TLSListenerOptions: o})
	doq := startDoQ(t, l, DoQOptions{TLSListenerOptions: o})
	for _, u := range []string{"tls://" + dot.Addr().String(), doh.URL(), doh3.URL(), doq.URL()} {
		opts := l.clientOpts()
		opts.ServerName = "dns.lab.test"
		opts.ECHConfigList = l.echList
		c, err := NewClient(u, opts)
		if err != nil {
			t.Fatal(err)
		}
		_, tm, err := ExchangeTimed(context.Background(), c, query("public.lab.test.", dns.TypeA, 1))
		c.Close()
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		if !tm.ECHAccepted {
			t.Errorf("%s: ECH not accepted", u)
		}
	}
}

func TestNewClientErrors(t *testing.T) {
	cases := []struct {
		url  string
		opts ClientOptions
		want error
	}{
		{"ftp://127.0.0.1", ClientOptions{}, ErrUnsupportedScheme},
		{"tls://dns.lab.test:853", ClientOptions{}, ErrNeedBootstrap},
		{"https://dns.lab.test/dns-query", ClientOptions{Bootstrap: "not-an-ip"}, ErrBadUpstream},
		{"quic://", ClientOptions{}, ErrBadUpstream},
	}
	for _, tc := range cases {
		if _, err := NewClient(tc.url, tc.opts); !errors.Is(err, tc.want) {
			t.Errorf("NewClient(%q) = %v, want %v", tc.url, err, tc.want)
		}
	}
}

// TestClientBootstrap: a named host is dialled at the bootstrap address
// and verified by its name.
func TestClientBootstrap(t *testing.T) {
	l := newLab(t)
	doq := startDoQ(t, l, DoQOptions{TLSListenerOptions: l.tlsOpts()})
	port := doq.Addr().(*net.UDPAddr).Port
	opts := l.clientOpts()
	opts.Bootstrap = "127.0.0.1"
	c, err := NewClient("quic://dns.lab.test:"+strconv.Itoa(port), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Exchange(context.Background(), query("public.lab.test.", dns.TypeA, 1)); err != nil {
		t.Fatal(err)
	}
}

func b64(b []byte) string {
	return (&dns.SVCBECHConfig{ECH: b}).String()
}

// BenchmarkExchange measures one query on a warm client per transport
// (connection reused), and a fresh client per query (connect+handshake).
func BenchmarkExchange(b *testing.B) {
	l := newLab(b)
	// The fixture's log would grow without bound: answer without logging.
	h := HandlerFunc(func(_ context.Context, req *dns.Msg, _ Meta) *dns.Msg {
		resp := new(dns.Msg).SetReply(req)
		resp.Answer = append(resp.Answer, l.h.rrs[1])
		if req.IsEdns0() != nil {
			resp.SetEdns0(1232, false)
		}
		return resp
	})
	do53 := startDo53(b, h)
	dot, _ := StartDoT(h, l.tlsOpts())
	defer dot.Close()
	doh, doh3, _ := startDoHWithH3(h, DoHOptions{TLSListenerOptions: l.tlsOpts()})
	defer doh.Close()
	defer doh3.Close()
	doq, _ := StartDoQ(h, DoQOptions{TLSListenerOptions: l.tlsOpts()})
	defer doq.Close()
	urls := map[string]string{"udp": "udp://" + do53, "tcp": "tcp://" + do53, "tls": "tls://" + dot.Addr().String(),
		"https": doh.URL(), "h3": doh3.URL(), "quic": doq.URL()}
	for _, name := range []string{"udp", "tcp", "tls", "https", "h3", "quic"} {
		for _, fresh := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/fresh=%v", name, fresh), func(b *testing.B) {
				c, err := NewClient(urls[name], l.clientOpts())
				if err != nil {
					b.Fatal(err)
				}
				q := query("secret.lab.test.", dns.TypeHTTPS, 1)
				for b.Loop() {
					if fresh {
						c.Close()
						c, _ = NewClient(urls[name], l.clientOpts())
					}
					if _, err := c.Exchange(context.Background(), q); err != nil {
						b.Fatal(err)
					}
				}
				c.Close()
			})
		}
	}
}
