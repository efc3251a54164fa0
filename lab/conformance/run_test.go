package conformance

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/echlab/echlab/resolver"
	"github.com/miekg/dns"
)

// wantGrades is the graded table as measured: a grade per client for
// every case of the catalogue. A cell where a client departs from the RFC
// is a "fail" here, with a comment: that is a finding, not a bug of the
// suite.
var wantGrades = map[string]map[Client]Grade{
	"baseline":                      {ClientEchlab: Pass, ClientGo: Pass},
	"unknown-version-only":          {ClientEchlab: Pass, ClientGo: Pass},
	"unknown-version-then-good":     {ClientEchlab: Pass, ClientGo: Pass},
	"mandatory-extension-only":      {ClientEchlab: Pass, ClientGo: Pass},
	"mandatory-extension-then-good": {ClientEchlab: Pass, ClientGo: Pass},
	// Finding: crypto/tls (Go 1.26) checks public_name with its
	// validDNSName, which has no IPv4-literal rule, so it offers ECH with
	// public_name 192.168.100.200 (RFC 9849 §6.1.7 SHOULD ignore it); the
	// handshake then fails on the certificate.
	"public-name-ip":              {ClientEchlab: Pass, ClientGo: Fail},
	"public-name-invalid":         {ClientEchlab: Pass, ClientGo: Pass},
	"public-name-ip-then-good":    {ClientEchlab: Pass, ClientGo: Fail}, // the same finding: Go picks the first config
	"ech-base64-text":             {ClientEchlab: Pass, ClientGo: Pass},
	"ech-truncated":               {ClientEchlab: Pass, ClientGo: Pass},
	"oversized-list-do53":         {ClientEchlab: Pass, ClientGo: Pass},
	"oversized-list-doh":          {ClientEchlab: Pass, ClientGo: Pass},
	"alias-chain":                 {ClientEchlab: Pass, ClientGo: NA},
	"alias-beside-service":        {ClientEchlab: Pass, ClientGo: NA},
	"alias-loop":                  {ClientEchlab: Pass, ClientGo: NA},
	"service-without-ech":         {ClientEchlab: Pass, ClientGo: Pass},
	"port-prefix-target-dot":      {ClientEchlab: Pass, ClientGo: NA},
	"port-prefix-target-explicit": {ClientEchlab: Pass, ClientGo: NA},
	"priorities":                  {ClientEchlab: Pass, ClientGo: NA},
	"ttl-zero":                    {ClientEchlab: Pass, ClientGo: NA},
	"mandatory-ech":               {ClientEchlab: Pass, ClientGo: NA},
	"mandatory-unknown-key":       {ClientEchlab: Pass, ClientGo: NA},
	"svcb-type":                   {ClientEchlab: Pass, ClientGo: NA},
	"reject-no-retry":             {ClientEchlab: Pass, ClientGo: Pass},
	"retry-foreign-cert":          {ClientEchlab: Pass, ClientGo: Pass},
	"retry-stale":                 {ClientEchlab: Pass, ClientGo: Pass},
	"flip-confirmation":           {ClientEchlab: Pass, ClientGo: Pass},
	"hrr-without-ech":             {ClientEchlab: Pass, ClientGo: Pass},
	"flip-hrr-confirmation":       {ClientEchlab: Pass, ClientGo: Pass},
	"close-after-server-hello":    {ClientEchlab: Pass, ClientGo: Pass},
}

// wantOutcomes pins what each client did where the grade alone would hide
// it (several outcomes pass).
var wantOutcomes = map[string]map[Client]Outcome{
	"unknown-version-only":   {ClientEchlab: OutcomeRefused, ClientGo: OutcomeRefused},
	"service-without-ech":    {ClientEchlab: OutcomeRefused, ClientGo: OutcomeClear},
	"reject-no-retry":        {ClientEchlab: OutcomeFailed, ClientGo: OutcomeFailed},
	"port-prefix-target-dot": {ClientEchlab: OutcomeECH},
	"alias-loop":             {ClientEchlab: OutcomeRefused},
	"svcb-type":              {ClientEchlab: OutcomeRefused},
}

// TestCatalogue runs every case with echlab's client and the Go client on
// loopback and checks each cell's grade, and that echlab's client passes
// every MUST case.
func TestCatalogue(t *testing.T) {
	envDir := t.TempDir()
	env, err := NewEnv(envDir)
	if err != nil {
		t.Fatal(err)
	}
	cases := Catalogue()
	if len(wantGrades) != len(cases) {
		t.Errorf("wantGrades has %d cases, the catalogue %d", len(wantGrades), len(cases))
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			cr, err := RunCase(context.Background(), env, envDir, c, Clients(), 20*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			for _, cell := range cr.Cells {
				if want := wantGrades[c.Name][cell.Client]; cell.Grade != want {
					t.Errorf("%s: grade %s, want %s: %s", cell.Client, cell.Grade, want, cell.Why)
				}
				if want, ok := wantOutcomes[c.Name][cell.Client]; ok && cell.Evidence.Outcome != want {
					t.Errorf("%s: outcome %s, want %s: %s", cell.Client, cell.Evidence.Outcome, want, cell.Why)
				}
				if cell.Client == ClientEchlab && c.Expect.Level == MUST && cell.Grade != Pass {
					t.Errorf("echlab's client fails MUST case %s: %s", c.Name, cell.Why)
				}
			}
		})
	}
}

// TestOversizedTruncates checks the oversized case does what it says on
// the wire: the HTTPS answer is truncated over UDP and fetched over TCP.
func TestOversizedTruncates(t *testing.T) {
	envDir := filepath.Join(t.TempDir(), "env")
	env, err := NewEnv(envDir)
	if err != nil {
		t.Fatal(err)
	}
	c, err := SelectCases([]string{"oversized-list-do53"})
	if err != nil {
		t.Fatal(err)
	}
	cr, err := RunCase(context.Background(), env, envDir, c[0], []Client{ClientEchlab}, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var https []Query
	for _, q := range cr.Cells[0].Evidence.Queries {
		if q.Type == "HTTPS" {
			https = append(https, q)
		}
	}
	if len(https) != 2 || https[0].Transport != "udp" || https[1].Transport != "tcp" || https[0].Size <= 1232 {
		t.Fatalf("HTTPS queries %+v, want one over udp (answer > 1232 bytes) then one over tcp", https)
	}
}

// TestSVCBTypeServed checks svcb-type publishes what it says: its resolver
// answers an SVCB query at the HTTPS owner with the record (mandatory=ech
// and an ech value) and an HTTPS query there with no record.
func TestSVCBTypeServed(t *testing.T) {
	envDir := filepath.Join(t.TempDir(), "env")
	env, err := NewEnv(envDir)
	if err != nil {
		t.Fatal(err)
	}
	c, err := SelectCases([]string{"svcb-type"})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := startCase(env, envDir, c[0])
	if err != nil {
		t.Fatal(err)
	}
	defer srv.close()
	stub, err := resolver.NewClient(srv.target.dnsURL, resolver.ClientOptions{RootCAs: srv.target.roots})
	if err != nil {
		t.Fatal(err)
	}
	defer stub.Close()
	for _, qt := range []uint16{dns.TypeSVCB, dns.TypeHTTPS} {
		m := new(dns.Msg)
		m.SetQuestion(httpsOwner(srv.target.port), qt)
		resp, err := stub.Exchange(t.Context(), m)
		if err != nil {
			t.Fatal(err)
		}
		var got []*dns.SVCB
		for _, rr := range resp.Answer {
			if s, ok := rr.(*dns.SVCB); ok {
				got = append(got, s)
			}
		}
		switch {
		case qt == dns.TypeHTTPS && (resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 0):
			t.Errorf("HTTPS query: rcode %d, %d answers; want NODATA", resp.Rcode, len(resp.Answer))
		case qt == dns.TypeSVCB && (len(got) != 1 || !strings.Contains(got[0].String(), `mandatory="ech"`) || !strings.Contains(got[0].String(), ` ech="`)):
			t.Errorf("SVCB query: %v; want the one SVCB record with mandatory=ech and ech", resp.Answer)
		}
	}
}
