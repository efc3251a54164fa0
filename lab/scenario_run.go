package lab

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/echlab/echlab/client"
	"github.com/echlab/echlab/resolver"
)

// runCase runs one case and judges it. A case whose server or DNS
// transport is missing is skipped with the reason, never faked.
func (s *stack) runCase(ctx context.Context, c Case) (cr CaseResult) {
	cr = CaseResult{Case: c, Start: time.Now()}
	defer func() { cr.End = time.Now() }()
	scen := c.scenario()
	if why, ok := s.skipped[scen.Service]; ok {
		cr.Outcome, cr.Detail = OutcomeSkipped, "skipped: "+why
		return cr
	}
	sv, ok := s.services[scen.Service]
	dnsURL, dok := s.dnsURLs[c.Transport]
	if !ok || !dok {
		cr.Outcome, cr.Detail = OutcomeSkipped, fmt.Sprintf("skipped: no %s server or no %s resolver listener", scen.Service, c.Transport)
		return cr
	}
	if scen.Client.HTTP3 && sv.udp == "" {
		cr.Outcome, cr.Detail = OutcomeSkipped, fmt.Sprintf("skipped: the %s server has no HTTP/3 listener", scen.Service)
		return cr
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CaseTimeout)
	defer cancel()
	rec := newCaseRecord(s.keylog)
	defer rec.fill(&cr)
	stub, err := resolver.NewClient(dnsURL, resolver.ClientOptions{RootCAs: s.ca.Pool(), KeyLogWriter: rec})
	if err != nil {
		cr.Outcome, cr.Detail = OutcomeFailed, err.Error()
		return cr
	}
	defer stub.Close()
	if c.Transport == DNSDo53 {
		stub = idStub{Client: stub, rec: rec}
	}
	switch scen.Client.Probe {
	case ProbeESNI:
		cr.Result, err = s.esniProbe(ctx, c, sv, stub, dnsURL, rec)
	case ProbeSeal:
		cr.Result, err = s.sealProbe(ctx, c, scen.Client, sv, stub, dnsURL, rec)
	default:
		cr.Result, err = s.fetch(ctx, c, scen.Client, sv, stub, dnsURL, rec)
	}
	cr.Outcome, cr.Detail = judge(c, cr.Result, err)
	return cr
}

// fetch runs the client package against a service, discovering through
// stub, with rec as its keylog and the recorder of every ClientHello it
// sends.
func (s *stack) fetch(ctx context.Context, c Case, cs ClientSpec, sv *service, stub resolver.Client, dnsURL string, rec *caseRecord) (*client.Result, error) {
	opts := client.Options{Resolver: stub, DNSTransport: c.Transport, DNSServer: dnsURL,
		RootCAs: s.ca.Pool(), KeyLog: rec, OnClientHello: rec.clientHello, Mode: cs.Mode, HTTP3: cs.HTTP3}
	u := fmt.Sprintf("https://%s:%d/api/conn", SecretName, port(sv.addr))
	return client.Fetch(ctx, u, opts)
}

// judge says whether a case did what its scenario expects (Expect).
func judge(c Case, r *client.Result, err error) (Outcome, string) {
	want := c.scenario().Expect
	if want.Judge != nil {
		return want.Judge(r, err)
	}
	if r == nil {
		return OutcomeFailed, fmt.Sprint(err)
	}
	hs := fmt.Sprintf("%.1f ms handshake", float64(r.HandshakeTime)/float64(time.Millisecond))
	if err != nil {
		return OutcomeFailed, fmt.Sprintf("ech=%s: %v", r.ECH, err)
	}
	if ech := cmp.Or(want.ECH, client.ECHAccepted); r.ECH != ech {
		return OutcomeFailed, fmt.Sprintf("ech=%s, want %s", r.ECH, ech)
	}
	detail := fmt.Sprintf("ech=%s outer=%s inner=%s, %s", r.ECH, r.OuterSNI, r.InnerSNI, hs)
	switch {
	case want.Retry && !r.Retried:
		return OutcomeFailed, "accepted without a retry: the stale config was not stale"
	case want.Retry:
		detail += ", retried with the server's retry configs"
	case want.HRR && r.ServerSaw != nil && r.ServerSaw["hrr"] != true:
		return OutcomeFailed, "the server reports no HelloRetryRequest"
	}
	return OutcomeOK, detail
}
