package lab

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/echlab/echlab/client"
	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/resolver"
)

// sealProbe is the client of the ProbeSeal scenarios (padding,
// ech-hide-alpn): it discovers the shared server's config through stub,
// seals crypto/tls's ClientHello for the inner name with ech.Seal under
// the case's padding policy (or, with cs.HideALPN, without ALPN in the
// outer), sends the ClientHelloOuter on a TCP connection, reads the
// ServerHello and checks
// the acceptance confirmation (RFC 9849 §7.2) with ech.VerifyAccepted. The
// handshake goes no further: the record is a Result all the same. The
// keylog gets the ECH_SECRET and ECH_CONFIG lines of the sealed hello (no
// traffic secrets: the handshake stops at the ServerHello) through rec,
// which keeps the outer random.
func (s *stack) sealProbe(ctx context.Context, c Case, cs ClientSpec, sv *service, stub resolver.Client, dnsURL string, rec *caseRecord) (*client.Result, error) {
	inner := cmp.Or(c.InnerName, SecretName)
	r := &client.Result{URL: fmt.Sprintf("https://%s:%d/", inner, port(sv.addr)), Mode: client.ModeECH,
		Policy: client.PolicyFailClosed, Transport: "tcp", DNSTransport: c.Transport, DNSServer: dnsURL,
		ConfigSource: client.SourceDNS, InnerSNI: inner, ECH: client.ECHRejected}
	start := time.Now()
	d, err := client.Discover(ctx, stub, SecretName, int(port(sv.addr)), false)
	r.Discovery, r.DNSTime = d, time.Since(start)
	if err != nil {
		return r, err
	}
	if len(d.ConfigList) == 0 {
		return r, fmt.Errorf("lab: no ech config in the HTTPS record of %s", d.Owner)
	}
	list, err := ech.ParseConfigListLenient(d.ConfigList)
	if err != nil || len(list.Configs) == 0 {
		return r, fmt.Errorf("lab: the published ECHConfigList is unusable: %v", err)
	}
	var sealed *ech.Sealed
	if cs.HideALPN {
		sealed, err = sealHideALPN(&list.Configs[0], inner)
	} else {
		sealed, err = sealFor(&list.Configs[0], inner, c.Padding)
	}
	if err != nil {
		return r, err
	}
	rec.addHello(sealed.Record)
	if s.keylog != nil {
		if err := client.WriteECHKeyLog(rec, sealed, &list.Configs[0]); err != nil {
			return r, err
		}
	}
	id := sealed.ConfigID
	r.ConfigID, r.PublicName, r.OuterSNI = &id, sealed.Outer.ServerName, sealed.Outer.ServerName
	r.Note = fmt.Sprintf("ClientHelloOuter sealed by ech.Seal with padding %s: %d bytes, %d padding bytes in the inner; handshake read up to the ServerHello only",
		c.Padding, len(sealed.Outer.Raw), sealed.PaddingLen)
	if cs.HideALPN {
		r.Note = hideALPNNote(sealed)
	}
	sh, err := s.sendOuter(ctx, sv.addr, sealed.Record, r)
	if err != nil {
		return r, err
	}
	ok, err := ech.VerifyAccepted(sealed.Inner.Raw, sh.Raw)
	if err != nil {
		return r, err
	}
	if ok {
		r.ECH = client.ECHAccepted
	}
	r.Total = time.Since(start)
	return r, nil
}

// sealFor seals crypto/tls's own ClientHello for name to cfg.
func sealFor(cfg *ech.Config, name, padding string) (*ech.Sealed, error) {
	msg, err := goClientHello(name, []string{"h2", "http/1.1"})
	if err != nil {
		return nil, err
	}
	p := ech.Padding{Mode: ech.PaddingRecommended}
	if padding == PaddingNone {
		p.Mode = ech.PaddingNone
	}
	return ech.Seal(cfg, msg, &ech.SealOptions{Padding: p})
}

// goClientHello returns the ClientHello handshake message crypto/tls
// sends for name (TLS 1.3 only) offering alpn.
func goClientHello(name string, alpn []string) ([]byte, error) {
	conf := &tls.Config{ServerName: name, MinVersion: tls.VersionTLS13, NextProtos: alpn}
	records, err := client.CaptureClientHello(conf)
	if err != nil {
		return nil, fmt.Errorf("lab: crypto/tls ClientHello: %w", err)
	}
	msg, _, err := ech.HandshakeFromRecords(records)
	if err != nil {
		return nil, fmt.Errorf("lab: crypto/tls ClientHello: %w", err)
	}
	return msg, nil
}

// sendOuter writes a ClientHelloOuter to addr and reads the ServerHello.
func (s *stack) sendOuter(ctx context.Context, addr string, record []byte, r *client.Result) (*ech.ServerHello, error) {
	buf, err := firstAnswer(ctx, addr, record, r, "the ServerHello", false)
	if err != nil {
		return nil, err
	}
	return ech.ParseServerHelloRecords(buf)
}

// firstAnswer dials addr, writes records (a ClientHello) and reads the
// server's answer until it holds complete handshake records or, when
// alerts is true, an alert record (see isAlert). It sets r's ConnectTime,
// RemoteAddr and HandshakeTime; what names the answer in errors.
func firstAnswer(ctx context.Context, addr string, records []byte, r *client.Result, what string, alerts bool) ([]byte, error) {
	t0 := time.Now()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	r.ConnectTime, r.RemoteAddr = time.Since(t0), conn.RemoteAddr().String()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl) //nolint:errcheck
	}
	t1 := time.Now()
	if _, err := conn.Write(records); err != nil {
		return nil, err
	}
	var buf []byte
	tmp := make([]byte, 4096)
	for {
		if alerts && isAlert(buf) {
			r.HandshakeTime = time.Since(t1)
			return buf, nil
		}
		if _, err := ech.RecordsNeeded(buf); err == nil {
			r.HandshakeTime = time.Since(t1)
			return buf, nil
		} else if !errors.Is(err, ech.ErrNeedMore) || len(buf) > 1<<17 {
			return nil, fmt.Errorf("lab: reading %s: %w", what, err)
		}
		n, err := conn.Read(tmp)
		buf = append(buf, tmp[:n]...)
		if err != nil && n == 0 {
			return nil, fmt.Errorf("lab: reading %s: %w", what, err)
		}
	}
}

// isAlert reports whether buf starts with a whole alert record header and
// body: content type 21, then level and description at buf[5:7].
func isAlert(buf []byte) bool { return len(buf) >= 7 && buf[0] == 21 }
