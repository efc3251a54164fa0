package interop

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/internal/pki"
	"github.com/echlab/echlab/resolver"
	"github.com/echlab/echlab/server"
)

// startTestLab starts the lab on loopback in a temporary directory.
func startTestLab(t *testing.T) *Lab {
	t.Helper()
	l, err := StartLab(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// query asks the lab's DoH for name and type, trusting the lab CA.
func query(t *testing.T, l *Lab, name string, qtype uint16) *dns.Msg {
	t.Helper()
	ca, err := pki.LoadPool(l.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	c, err := resolver.NewClient(l.DoHURL, resolver.ClientOptions{RootCAs: ca})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	resp, err := c.Exchange(context.Background(), m)
	if err != nil {
		t.Fatalf("DoH %s %s: %v", name, dns.TypeToString[qtype], err)
	}
	return resp
}

// publishedECH returns the ech= value of the HTTPS record at the
// port-prefixed name of host, and its TargetName.
func publishedECH(t *testing.T, l *Lab, host string) ([]byte, string) {
	t.Helper()
	resp := query(t, l, fmt.Sprintf("_%d._https.%s", l.Port, host), dns.TypeHTTPS)
	for _, rr := range resp.Answer {
		h, ok := rr.(*dns.HTTPS)
		if !ok {
			continue
		}
		for _, kv := range h.Value {
			if e, ok := kv.(*dns.SVCBECHConfig); ok {
				return e.ECH, h.Target
			}
		}
	}
	return nil, ""
}

func TestLabPublishes(t *testing.T) {
	l := startTestLab(t)
	if l.StaleID == l.CurrentID {
		t.Fatalf("stale and current config ids are both %d", l.StaleID)
	}
	for _, tc := range []struct {
		host string
		id   uint8
	}{{SecretName, l.CurrentID}, {StaleName, l.StaleID}, {H3Name, l.CurrentID}} {
		list, target := publishedECH(t, l, tc.host)
		if target != tc.host+"." {
			t.Errorf("%s: TargetName %q, want %s. (Chromium ignores \".\" on a port-prefixed name)", tc.host, target, tc.host)
		}
		cfgs, err := ech.ParseConfigList(list)
		if err != nil || len(cfgs.Configs) != 1 || cfgs.Configs[0].ConfigID != tc.id {
			t.Errorf("%s: published %v (err %v), want one config with id %d", tc.host, cfgs, err, tc.id)
		}
	}
	if list, _ := publishedECH(t, l, PlainName); list != nil {
		t.Errorf("%s has an HTTPS record; the grease case needs none", PlainName)
	}
	for _, name := range []string{SecretName, "www.gstatic.com"} { // the second is Chromium's DoH probe
		a := query(t, l, name, dns.TypeA)
		if len(a.Answer) != 1 || !a.Answer[0].(*dns.A).A.Equal(net.IPv4(127, 0, 0, 1)) {
			t.Errorf("A %s: %v, want 127.0.0.1", name, a.Answer)
		}
	}
}

// TestLabStaleRetry plays the retry case with Go's crypto/tls and checks
// that the judge sees what the browsers must show.
func TestLabStaleRetry(t *testing.T) {
	l := startTestLab(t)
	stale, _ := publishedECH(t, l, StaleName)
	ca, err := pki.LoadPool(l.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	mark := l.Log.Mark()
	addr := fmt.Sprintf("127.0.0.1:%d", l.Port)
	cfg := &tls.Config{ServerName: StaleName, RootCAs: ca, EncryptedClientHelloConfigList: stale, NextProtos: []string{"h2"}}
	_, err = tls.Dial("tcp", addr, cfg)
	var rej *tls.ECHRejectionError
	if !errors.As(err, &rej) || len(rej.RetryConfigList) == 0 {
		t.Fatalf("stale config: %v, want an ECHRejectionError with retry configs", err)
	}
	cfg.EncryptedClientHelloConfigList = rej.RetryConfigList
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	if !c.ConnectionState().ECHAccepted {
		t.Error("retry: ECH not accepted")
	}
	c.Close()
	recs := waitRecords(t, l, mark, 2)
	v := l.judge(Cases[2], recs)
	if v.Outcome != Pass || v.Retries != 1 || v.InnerSNI != StaleName {
		t.Errorf("judge(retry) = %+v, want pass with 1 retry", v)
	}
	if v := l.judge(Cases[0], recs); v.Outcome != Fail {
		t.Errorf("judge(ech) on the retry records = %s, want fail (inner name differs)", v.Outcome)
	}
}

// waitRecords waits until the log holds n records after mark.
func waitRecords(t *testing.T, l *Lab, mark, n int) []server.ConnRecord {
	t.Helper()
	for range 100 {
		if recs := l.Log.Since(mark); len(recs) >= n {
			return recs
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("fewer than %d connection records: %+v", n, l.Log.Since(mark))
	return nil
}
