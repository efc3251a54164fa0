package resolver

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/internal/pki"
	"github.com/miekg/dns"
)

// seen is what the fixture handler saw of one query.
type seen struct {
	Meta   Meta
	ID     uint16
	Padded bool
	Size   int // packed size of the query as received
}

// fixtureHandler is a real Handler answering from an in-memory RR set
// (a test fixture for the transports, not a stand-in for the authority).
type fixtureHandler struct {
	rrs []dns.RR
	mu  sync.Mutex
	log []seen
}

func (f *fixtureHandler) Answer(_ context.Context, req *dns.Msg, meta Meta) *dns.Msg {
	b, _ := req.Pack()
	f.mu.Lock()
	f.log = append(f.log, seen{Meta: meta, ID: req.Id, Padded: hasPadding(req), Size: len(b)})
	f.mu.Unlock()
	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.Authoritative = true
	if len(req.Question) != 1 {
		resp.Rcode = dns.RcodeFormatError
		return resp
	}
	q := req.Question[0]
	for _, rr := range f.rrs {
		h := rr.Header()
		if strings.EqualFold(h.Name, q.Name) && h.Rrtype == q.Qtype {
			resp.Answer = append(resp.Answer, dns.Copy(rr))
		}
	}
	if len(resp.Answer) == 0 {
		resp.Rcode = dns.RcodeNameError
	}
	if req.IsEdns0() != nil {
		resp.SetEdns0(1232, false)
	}
	return resp
}

func (f *fixtureHandler) last(t *testing.T) seen {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.log) == 0 {
		t.Fatal("handler saw no query")
	}
	return f.log[len(f.log)-1]
}

// lab is a test world: a lab CA, a server certificate for dns.lab.test
// and 127.0.0.1, an ECH key, and the fixture handler.
type lab struct {
	ca      *pki.CA
	cert    tls.Certificate
	echList []byte
	echKeys []tls.EncryptedClientHelloKey
	h       *fixtureHandler
}

func newLab(t testing.TB) *lab {
	t.Helper()
	ca, err := pki.NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue("dns.lab.test", []string{"dns.lab.test", "127.0.0.1", "::1"}, false)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ech.GenerateKey(ech.KeyOptions{ConfigID: 7, PublicName: "public.lab.test"})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := key.Config.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	list, err := ech.MarshalConfigList(raw)
	if err != nil {
		t.Fatal(err)
	}
	tk, err := key.TLSKey(true)
	if err != nil {
		t.Fatal(err)
	}
	l := &lab{ca: ca, cert: cert, echList: list, echKeys: []tls.EncryptedClientHelloKey{tk}, h: &fixtureHandler{}}
	l.add(t, "public.lab.test. 60 IN A 127.0.0.1")
	l.add(t, "secret.lab.test. 300 IN HTTPS 1 . alpn=h2 ech="+b64(list))
	for i := range 30 {
		l.add(t, fmt.Sprintf(`big.lab.test. 30 IN TXT "%040d"`, i))
	}
	return l
}

func (l *lab) add(t testing.TB, s string) {
	rr, err := dns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	l.h.rrs = append(l.h.rrs, rr)
}

func (l *lab) tlsOpts() TLSListenerOptions {
	return TLSListenerOptions{Certificates: []tls.Certificate{l.cert}}
}

func (l *lab) clientOpts() ClientOptions {
	return ClientOptions{RootCAs: l.ca.Pool(), Timeout: 5 * time.Second}
}

func query(name string, qtype uint16, id uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Id = id
	return m
}

// startDo53 starts the core's UDP and TCP servers on one port number.
func startDo53(t testing.TB, h Handler) string {
	t.Helper()
	for range 10 {
		conn, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", conn.LocalAddr().String())
		if err != nil {
			conn.Close()
			continue
		}
		u := serveUDP(conn, h, 0)
		s := serveStream(ln, h, TransportTCP, false)
		t.Cleanup(func() { u.Close(); s.Close() })
		return conn.LocalAddr().String()
	}
	t.Fatal("no port free for both UDP and TCP")
	return ""
}
