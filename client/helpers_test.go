package client

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/internal/pki"
	"github.com/miekg/dns"
	"github.com/quic-go/quic-go/http3"
)

// lab is the test world: a CA, a certificate for the secret and public
// names, and ECH keys.
type lab struct {
	ca   *pki.CA
	cert tls.Certificate
}

func newLab(t testing.TB) *lab {
	t.Helper()
	ca, err := pki.NewCA("client test CA")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue("secret.lab.test", []string{"secret.lab.test", "public.lab.test", "plain.lab.test", "127.0.0.1"}, false)
	if err != nil {
		t.Fatal(err)
	}
	return &lab{ca: ca, cert: cert}
}

// newKey makes an ECH key and its one-config ECHConfigList.
func newKey(t testing.TB, id uint8) (*ech.Key, []byte) {
	t.Helper()
	k, err := ech.GenerateKey(ech.KeyOptions{ConfigID: id})
	if err != nil {
		t.Fatal(err)
	}
	list, err := ech.MarshalConfigList(k.Config.Raw)
	if err != nil {
		t.Fatal(err)
	}
	return k, list
}

func echKeys(keys ...*ech.Key) []tls.EncryptedClientHelloKey {
	var out []tls.EncryptedClientHelloKey
	for _, k := range keys {
		out = append(out, tls.EncryptedClientHelloKey{Config: k.Config.Raw, PrivateKey: k.PrivateKey, SendAsRetry: true})
	}
	return out
}

// report is what the test servers answer: what they saw of the connection.
func report(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"sni": r.TLS.ServerName, "ech": r.TLS.ECHAccepted, "proto": r.Proto,
		"client_cert": len(r.TLS.PeerCertificates) > 0,
	})
}

// serverTLS is the server config; keys may be nil (no ECH).
func (l *lab) serverTLS(keys []tls.EncryptedClientHelloKey) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{l.cert}, EncryptedClientHelloKeys: keys}
}

// startTLS runs an HTTPS (h2, http/1.1) server on 127.0.0.1:0.
func startTLS(t testing.TB, conf *tls.Config) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(report), TLSConfig: conf, ErrorLog: quietLog()}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// startH3 runs an HTTP/3 server on 127.0.0.1:0.
func startH3(t testing.TB, conf *tls.Config) int {
	t.Helper()
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http3.Server{Handler: http.HandlerFunc(report), TLSConfig: http3.ConfigureTLSConfig(conf)}
	go srv.Serve(udp)
	t.Cleanup(func() { srv.Close(); udp.Close() })
	return udp.LocalAddr().(*net.UDPAddr).Port
}

// zone is a tiny authoritative DNS server: RRs in presentation format.
type zone struct {
	mu  sync.Mutex
	rrs []dns.RR
}

func newZone(t testing.TB, records ...string) *zone {
	t.Helper()
	z := &zone{}
	for _, s := range records {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatalf("zone record %q: %v", s, err)
		}
		z.rrs = append(z.rrs, rr)
	}
	return z
}

func (z *zone) ServeDNS(w dns.ResponseWriter, req *dns.Msg) { w.WriteMsg(z.answer(req)) }

// answer builds the authoritative answer: NXDOMAIN for names without RRs.
func (z *zone) answer(req *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	q := req.Question[0]
	exists := false
	z.mu.Lock()
	for _, rr := range z.rrs {
		if strings.EqualFold(rr.Header().Name, q.Name) {
			exists = true
			if rr.Header().Rrtype == q.Qtype {
				m.Answer = append(m.Answer, dns.Copy(rr))
			}
		}
	}
	z.mu.Unlock()
	if !exists {
		m.Rcode = dns.RcodeNameError
	}
	return m
}

// startUDP serves z over UDP on 127.0.0.1:0 and returns its address.
func (z *zone) startUDP(t testing.TB) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, Handler: z, NotifyStartedFunc: func() { close(started) }}
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}

// udpExchanger is a plain Do53/UDP Exchanger for tests.
type udpExchanger struct{ addr string }

func (u udpExchanger) Exchange(ctx context.Context, m *dns.Msg) (*dns.Msg, error) {
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	r, _, err := c.ExchangeContext(ctx, m, u.addr)
	return r, err
}

// echRecord is an HTTPS ServiceMode record in presentation format.
func echRecord(owner, target string, port int, list []byte, alpn string) string {
	s := owner + " 60 IN HTTPS 1 " + target + " port=" + itoa(port) + " alpn=" + alpn
	if list != nil {
		s += " ech=" + b64(list)
	}
	return s
}

// opts returns options that trust the lab CA and resolve through addr.
func (l *lab) opts(dnsAddr string) Options {
	return Options{Resolver: udpExchanger{dnsAddr}, DNSTransport: "udp", DNSServer: dnsAddr,
		RootCAs: l.ca.Pool(), Timeout: 10 * time.Second}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}
