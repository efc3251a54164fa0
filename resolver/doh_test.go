package resolver

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/echlab/echlab/internal/testutil"
	"github.com/miekg/dns"
	"github.com/quic-go/quic-go/http3"
)

// httpClient returns an HTTP/1.1+HTTP/2 or an HTTP/3 client trusting the lab CA.
func (l *lab) httpClient(t *testing.T, h3 bool) *http.Client {
	conf := &tls.Config{RootCAs: l.ca.Pool()}
	var rt http.RoundTripper = &http.Transport{TLSClientConfig: conf, ForceAttemptHTTP2: true}
	if h3 {
		tr := &http3.Transport{TLSClientConfig: conf}
		t.Cleanup(func() { tr.Close() })
		rt = tr
	}
	return &http.Client{Transport: rt, Timeout: 5 * time.Second}
}

func packed(t *testing.T, m *dns.Msg) []byte {
	t.Helper()
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDoHBadInput(t *testing.T) {
	l := newLab(t)
	doh, _ := startDoH(t, l, DoHOptions{TLSListenerOptions: l.tlsOpts()})
	hc := l.httpClient(t, false)
	good := packed(t, query("public.lab.test.", dns.TypeA, 0))
	resp := packed(t, new(dns.Msg).SetReply(query("public.lab.test.", dns.TypeA, 0)))
	cases := []struct {
		name, method, query, ctype string
		body                       []byte
		status                     int
	}{
		{"GET without dns", "GET", "", "", nil, 400},
		{"GET bad base64", "GET", "dns=!!!!", "", nil, 400},
		{"GET undecodable message", "GET", "dns=" + base64.RawURLEncoding.EncodeToString([]byte{1, 2, 3}), "", nil, 400},
		{"GET a response", "GET", "dns=" + base64.RawURLEncoding.EncodeToString(resp), "", nil, 400},
		{"POST wrong content type", "POST", "", "text/plain", good, 415},
		{"POST no content type", "POST", "", "", good, 415},
		{"POST oversized body", "POST", "", mediaDNSMessage, make([]byte, 70000), 413},
		{"POST garbage", "POST", "", mediaDNSMessage, []byte("garbage"), 400},
		{"POST empty", "POST", "", mediaDNSMessage, nil, 400},
		{"PUT", "PUT", "", mediaDNSMessage, good, 405},
		{"DELETE", "DELETE", "", "", nil, 405},
		{"GET padded base64 accepted", "GET", "dns=" + base64.URLEncoding.EncodeToString(good), "", nil, 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := doh.URL()
			if tc.query != "" {
				u += "?" + tc.query
			}
			req, _ := http.NewRequest(tc.method, u, bytes.NewReader(tc.body))
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			r, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(r.Body)
			r.Body.Close()
			if r.StatusCode != tc.status {
				t.Fatalf("status %d (%s), want %d", r.StatusCode, body, tc.status)
			}
			if tc.status != 200 && !strings.HasPrefix(string(body), "resolver: doh:") {
				t.Errorf("error body %q does not explain itself", body)
			}
			if tc.status == 405 && r.Header.Get("Allow") != "GET, POST" {
				t.Errorf("405 without Allow: GET, POST")
			}
		})
	}
}

// TestDoHHeaders: media type, Cache-Control from the smallest TTL, the
// message ID echoed, Alt-Svc on HTTP/2 but not on HTTP/3.
func TestDoHHeaders(t *testing.T) {
	l := newLab(t)
	doh, doh3 := startDoH(t, l, DoHOptions{TLSListenerOptions: l.tlsOpts()})
	port := doh3.Addr().(*net.UDPAddr).Port
	for _, h3 := range []bool{false, true} {
		u := doh.URL()
		if h3 {
			u = "https://" + doh3.Addr().String() + DoHPath
		}
		q := packed(t, query("secret.lab.test.", dns.TypeHTTPS, 0xbeef))
		r, err := l.httpClient(t, h3).Post(u, mediaDNSMessage, bytes.NewReader(q))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(r.Body)
		r.Body.Close()
		wantProto := map[bool]int{false: 2, true: 3}[h3]
		if r.StatusCode != 200 || r.ProtoMajor != wantProto {
			t.Fatalf("status %d over HTTP/%d, want 200 over HTTP/%d", r.StatusCode, r.ProtoMajor, wantProto)
		}
		if ct := r.Header.Get("Content-Type"); ct != mediaDNSMessage {
			t.Errorf("Content-Type %q", ct)
		}
		if cc := r.Header.Get("Cache-Control"); cc != "max-age=300" {
			t.Errorf("Cache-Control %q, want max-age=300", cc)
		}
		alt, wantAlt := r.Header.Get("Alt-Svc"), `h3=":`+strconv.Itoa(port)+`"`
		if h3 {
			wantAlt = ""
		}
		if alt != wantAlt {
			t.Errorf("HTTP/%d Alt-Svc %q, want %q", r.ProtoMajor, alt, wantAlt)
		}
		m := new(dns.Msg)
		if err := m.Unpack(body); err != nil {
			t.Fatal(err)
		}
		if m.Id != 0xbeef {
			t.Errorf("response ID %#x, want the query's 0xbeef", m.Id)
		}
		checkHTTPSAnswer(t, setID(m, 0x1234), l.echList)
	}
}

func setID(m *dns.Msg, id uint16) *dns.Msg { m.Id = id; return m }

func TestDoHJSON(t *testing.T) {
	l := newLab(t)
	doh, _ := startDoH(t, l, DoHOptions{TLSListenerOptions: l.tlsOpts()})
	hc := l.httpClient(t, false)
	base := "https://" + doh.Addr().String()
	wire := base64.RawURLEncoding.EncodeToString(packed(t, query("secret.lab.test.", dns.TypeHTTPS, 0)))
	for _, tc := range []struct{ path, accept string }{
		{"/resolve?name=secret.lab.test&type=HTTPS", ""},
		{"/dns-query?name=secret.lab.test&type=65", ""},
		{"/dns-query?dns=" + wire, mediaDNSJSON},
	} {
		req, _ := http.NewRequest("GET", base+tc.path, nil)
		if tc.accept != "" {
			req.Header.Set("Accept", tc.accept)
		}
		r, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var j JSONMessage
		err = json.NewDecoder(r.Body).Decode(&j)
		r.Body.Close()
		if err != nil || r.StatusCode != 200 {
			t.Fatalf("%s: status %d, %v", tc.path, r.StatusCode, err)
		}
		checkJSONAnswer(t, &j, l.echList)
		if s := l.h.last(t); s.Meta.Transport != TransportJSON {
			t.Errorf("transport %q, want json", s.Meta.Transport)
		}
	}
	r, err := hc.Get(base + "/resolve?name=secret.lab.test&type=NOSUCHTYPE")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 400 {
		t.Errorf("unknown type: status %d, want 400", r.StatusCode)
	}
}

var echValueRE = regexp.MustCompile(`ech="?([A-Za-z0-9+/=]+)`)

// echOf extracts and decodes the ech= value from presentation text.
func echOf(t *testing.T, text string) []byte {
	t.Helper()
	m := echValueRE.FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no ech= in %q", text)
	}
	b, err := base64.StdEncoding.DecodeString(m[1])
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func checkJSONAnswer(t *testing.T, j *JSONMessage, echList []byte) {
	t.Helper()
	if j.Status != 0 || len(j.Question) != 1 || j.Question[0].Type != 65 || len(j.Answer) != 1 {
		t.Fatalf("bad JSON answer %+v", j)
	}
	a := j.Answer[0]
	if a.Name != "secret.lab.test." || a.Type != 65 || a.TTL != 300 || !strings.HasPrefix(a.Data, "1 . ") {
		t.Fatalf("bad JSON record %+v", a)
	}
	if !bytes.Equal(echOf(t, a.Data), echList) {
		t.Fatal("JSON ech= differs from the published list")
	}
}

// TestDoHPadding: padded queries get responses padded to a multiple of
// 468 octets, over HTTP/2 and HTTP/3; unpadded queries get no padding.
func TestDoHPadding(t *testing.T) {
	l := newLab(t)
	doh, doh3 := startDoH(t, l, DoHOptions{TLSListenerOptions: l.tlsOpts()})
	for _, u := range []string{doh.URL(), "https://" + doh3.Addr().String() + DoHPath} {
		for _, pad := range []bool{true, false} {
			q := query("secret.lab.test.", dns.TypeHTTPS, 0)
			q.SetEdns0(1232, false)
			if pad {
				if err := padQuery(q); err != nil {
					t.Fatal(err)
				}
			}
			r, err := l.httpClient(t, strings.Contains(u, doh3.Addr().String())).Post(u, mediaDNSMessage, bytes.NewReader(packed(t, q)))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(r.Body)
			r.Body.Close()
			m := new(dns.Msg)
			if err := m.Unpack(body); err != nil {
				t.Fatal(err)
			}
			if hasPadding(m) != pad || (pad && len(body)%responsePadBlock != 0) {
				t.Errorf("%s pad=%v: response of %d octets, padded=%v", u, pad, len(body), hasPadding(m))
			}
		}
	}
}

// writeCA writes the lab CA certificate for external tools.
func (l *lab) writeCA(t *testing.T) string {
	f := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(f, l.ca.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestDigDoH: BIND's dig and Knot's kdig talk DoH (POST and GET) to our
// server, verifying it with the lab CA, and read the published ech=.
func TestDigDoH(t *testing.T) {
	l := newLab(t)
	doh, _ := startDoH(t, l, DoHOptions{TLSListenerOptions: l.tlsOpts()})
	port := strconv.Itoa(doh.Addr().(*net.TCPAddr).Port)
	ca := l.writeCA(t)
	t.Run("dig", func(t *testing.T) {
		dig := testutil.NeedTool(t, "dig")
		for _, method := range []string{"+https", "+https-get"} {
			out := run(t, dig, "@127.0.0.1", "-p", port, method, "+tls-ca="+ca, "+tls-hostname=dns.lab.test",
				"secret.lab.test", "HTTPS")
			checkToolOutput(t, out, "status: NOERROR", l)
		}
	})
	t.Run("kdig", func(t *testing.T) {
		kdig := testutil.NeedTool(t, "kdig")
		for _, method := range []string{"+https", "+https-get"} {
			out := run(t, kdig, "@127.0.0.1", "-p", port, method, "+tls-ca="+ca, "+tls-hostname=dns.lab.test",
				"secret.lab.test", "HTTPS")
			checkToolOutput(t, out, "status: NOERROR", l)
		}
	})
}

func checkToolOutput(t *testing.T, out, want string, l *lab) {
	t.Helper()
	if !strings.Contains(out, want) {
		t.Fatalf("output lacks %q:\n%s", want, out)
	}
	if !bytes.Equal(echOf(t, out), l.echList) {
		t.Fatalf("ech= in the output differs from the published list:\n%s", out)
	}
	if s := l.h.last(t); s.Meta.Transport != TransportDoH {
		t.Fatalf("server saw transport %q, want doh", s.Meta.Transport)
	}
}

// TestCurlJSON: curl reads the JSON endpoint.
func TestCurlJSON(t *testing.T) {
	curl := testutil.NeedTool(t, "curl")
	l := newLab(t)
	doh, _ := startDoH(t, l, DoHOptions{TLSListenerOptions: l.tlsOpts()})
	ca := l.writeCA(t)
	for _, args := range [][]string{
		{"https://" + doh.Addr().String() + "/resolve?name=secret.lab.test&type=HTTPS"},
		{"-H", "accept: application/dns-json", "https://" + doh.Addr().String() + "/dns-query?name=secret.lab.test&type=HTTPS"},
	} {
		out := run(t, curl, append([]string{"-sS", "--fail", "--cacert", ca, "--noproxy", "*"}, args...)...)
		var j JSONMessage
		if err := json.Unmarshal([]byte(out), &j); err != nil {
			t.Fatalf("curl output is not JSON: %v\n%s", err, out)
		}
		checkJSONAnswer(t, &j, l.echList)
	}
}
