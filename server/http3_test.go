package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// h3Client makes an HTTP/3 client that dials udpAddr whatever the URL says.
func h3Client(t *testing.T, udpAddr string, cfg *tls.Config) *http.Client {
	tr := &http3.Transport{
		TLSClientConfig: cfg,
		Dial: func(ctx context.Context, _ string, tlsCfg *tls.Config, qc *quic.Config) (*quic.Conn, error) {
			return quic.DialAddr(ctx, udpAddr, tlsCfg, qc)
		},
	}
	t.Cleanup(func() { tr.Close() })
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func TestSharedECHAcceptedHTTP3(t *testing.T) {
	k := newKey(t, 9)
	logBuf := &syncBuffer{}
	s := startServer(t, Config{Keys: NewStaticKeys(k), Log: logBuf, HTTP3: true})
	if s.UDPAddr() == "" {
		t.Fatal("no UDP address with HTTP3 set")
	}
	// The TCP side advertises h3 on the UDP port.
	c := httpClient(s.Addr(), clientTLS(t, "secret.lab.test", configList(t, k)))
	resp, _ := getJSON(t, c, "secret.lab.test")
	if alt := resp.Header.Get("Alt-Svc"); !strings.HasPrefix(alt, `h3=":`) ||
		!strings.Contains(alt, s.UDPAddr()[strings.LastIndex(s.UDPAddr(), ":")+1:]) {
		t.Errorf("Alt-Svc = %q, UDP address %s", alt, s.UDPAddr())
	}

	cfg := clientTLS(t, "secret.lab.test", configList(t, k))
	cfg.NextProtos = nil
	h3 := h3Client(t, s.UDPAddr(), cfg)
	resp, err := h3.Get("https://secret.lab.test/api/conn")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Proto != "HTTP/3.0" || resp.TLS == nil || !resp.TLS.ECHAccepted {
		t.Fatalf("Proto %q, TLS %+v", resp.Proto, resp.TLS)
	}
	var in ConnInfo
	if err := json.Unmarshal(body, &in); err != nil {
		t.Fatal(err)
	}
	if in.HTTP != "http/3" || in.Transport != TransportQUIC || in.ECH != ECHAccepted ||
		in.OuterSNI != "public.lab.test" || in.InnerSNI != "secret.lab.test" || in.ALPN != "h3" {
		t.Errorf("/api/conn over h3 = %+v", in)
	}
	recs := logBuf.waitRecords(t, 2)
	if len(recs) != 2 || recs[1].Transport != TransportQUIC || recs[1].ECH != ECHAccepted || recs[1].InnerSNI != "secret.lab.test" {
		t.Errorf("log = %+v", recs)
	}
}
