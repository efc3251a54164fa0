package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/echlab/echlab/client"
	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/lab/observe"
	"github.com/echlab/echlab/resolver"
	"github.com/miekg/dns"
)

// keysESNI is the ESNI key directory under the keys folder.
const keysESNI = "esni"

// ModeESNI is the client.Result mode of the esni scenario's probe.
const ModeESNI client.Mode = "esni"

// esniNote is what the esni scenario says of every handshake it starts.
const esniNote = "ESNI ClientHello sent; handshake not completed: no TLS stack implements ESNI"

// loadESNIKeys loads the lab's ESNI keys, or makes them when they are
// missing or no longer valid: draft-02 keys (version 0xff01, no
// public_name), as Cloudflare published and Firefox used them.
func (s *stack) loadESNIKeys() error {
	dir := filepath.Join(s.keysDir, keysESNI)
	if _, err := os.Stat(filepath.Join(dir, ech.ESNIKeyFile)); err == nil {
		set, err := ech.LoadESNIKeys(dir)
		if err != nil {
			return fmt.Errorf("lab: ESNI keys %s: %w", dir, err)
		}
		if set.Keys.Validate(time.Now().Add(time.Hour)) == nil {
			s.esni = set
			return nil
		}
	}
	set, err := ech.GenerateESNIKeys(ech.ESNIKeyOptions{Version: ech.ESNIVersionDraft02})
	if err != nil {
		return fmt.Errorf("lab: generating ESNI keys: %w", err)
	}
	if err := ech.SaveESNIKeys(dir, set); err != nil {
		return fmt.Errorf("lab: saving ESNI keys %s: %w", dir, err)
	}
	s.esni = set
	return nil
}

// esniPublish is the resolver configuration that publishes the ESNI keys
// as the TXT record _esni.secret.lab.test.
func (s *stack) esniPublish() (map[string]string, []resolver.ESNIPublishRule) {
	if s.esni == nil {
		return nil, nil
	}
	return map[string]string{keysESNI: filepath.Join(s.keysDir, keysESNI)},
		[]resolver.ESNIPublishRule{{Name: SecretName + ".", KeySet: keysESNI}}
}

// esniKeySets is what Compare decrypts ESNI with.
func (s *stack) esniKeySets() []*ech.ESNIKeySet {
	if s.esni == nil {
		return nil
	}
	return []*ech.ESNIKeySet{s.esni}
}

// esniProbe is the esni scenario's client. It looks _esni.secret.lab.test
// TXT and secret.lab.test A up through stub, builds an ESNI ClientHello
// for secret.lab.test with ALPN h2 (ech.BuildESNIClientHello), sends it to
// the service over TCP and records the server's answer: a ServerHello
// that ignored the extension, or an alert. No TLS stack completes ESNI,
// so the handshake stops there. rec keeps the ClientHello's random.
func (s *stack) esniProbe(ctx context.Context, c Case, sv *service, stub resolver.Client, dnsURL string, rec *caseRecord) (*client.Result, error) {
	r := &client.Result{URL: fmt.Sprintf("https://%s:%d/", SecretName, port(sv.addr)), Mode: ModeESNI,
		Policy: client.PolicyFailClosed, Transport: "tcp", DNSTransport: c.Transport, DNSServer: dnsURL,
		ConfigSource: client.SourceDNS, InnerSNI: SecretName, ECH: client.ECHNone, ALPN: "h2"}
	start := time.Now()
	keys, err := lookupESNI(ctx, stub, SecretName)
	if err != nil {
		return r, err
	}
	addr, err := lookupA(ctx, stub, SecretName)
	r.DNSTime = time.Since(start)
	if err != nil {
		return r, err
	}
	hello, err := ech.BuildESNIClientHello(keys, ech.ESNIHelloOptions{ServerName: SecretName, ALPN: []string{"h2"}})
	if err != nil {
		return r, err
	}
	r.OuterSNI = hello.Hello.ServerName
	rec.addHello(hello.Records)
	ans, err := s.sendESNI(ctx, netip.AddrPortFrom(addr, port(sv.addr)).String(), hello.Records, r)
	r.Total = time.Since(start)
	if err != nil {
		return r, err
	}
	r.Note = fmt.Sprintf("%s. ESNIKeys %#04x from TXT _esni.%s over %s; ClientHello %d bytes, encrypted_sni %d bytes; server answered %s",
		esniNote, keys.Version, SecretName, c.Transport, len(hello.Message), len(hello.Sealed.Ext.EncryptedSNI), ans)
	return r, nil
}

// lookupESNI reads and checks the ESNIKeys of name's _esni TXT record.
func lookupESNI(ctx context.Context, stub resolver.Client, name string) (*ech.ESNIKeys, error) {
	resp, err := stub.Exchange(ctx, new(dns.Msg).SetQuestion("_esni."+dns.Fqdn(name), dns.TypeTXT))
	if err != nil {
		return nil, fmt.Errorf("lab: _esni TXT lookup: %w", err)
	}
	for _, rr := range resp.Answer {
		txt, ok := rr.(*dns.TXT)
		if !ok {
			continue
		}
		raw, err := ech.DecodeESNIKeysText(strings.Join(txt.Txt, ""))
		if err != nil {
			return nil, err
		}
		keys, err := ech.ParseESNIKeys(raw)
		if err != nil {
			return nil, err
		}
		return keys, keys.Validate(time.Now())
	}
	return nil, fmt.Errorf("lab: no TXT record at _esni.%s (rcode %s)", name, dns.RcodeToString[resp.Rcode])
}

// lookupA returns the first A record of name.
func lookupA(ctx context.Context, stub resolver.Client, name string) (netip.Addr, error) {
	resp, err := stub.Exchange(ctx, new(dns.Msg).SetQuestion(dns.Fqdn(name), dns.TypeA))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("lab: A lookup: %w", err)
	}
	for _, rr := range resp.Answer {
		if a, ok := rr.(*dns.A); ok {
			if ip, ok := netip.AddrFromSlice(a.A.To4()); ok {
				return ip, nil
			}
		}
	}
	return netip.Addr{}, fmt.Errorf("lab: no A record for %s", name)
}

// errESNIAlert is the server refusing the ESNI ClientHello with an alert.
var errESNIAlert = errors.New("lab: the server answered the ESNI ClientHello with an alert")

// sendESNI writes the ClientHello records to addr and describes the
// server's first answer: its ServerHello, or an alert (errESNIAlert).
func (s *stack) sendESNI(ctx context.Context, addr string, records []byte, r *client.Result) (string, error) {
	buf, err := firstAnswer(ctx, addr, records, r, "the server's answer", true)
	if err != nil {
		return "", err
	}
	if isAlert(buf) {
		return "", fmt.Errorf("%w %d (%s)", errESNIAlert, buf[6], alertName(buf[6]))
	}
	return describeESNIServerHello(buf, r)
}

// describeESNIServerHello fills the result's TLS parameters from the
// ServerHello and says what it means for ESNI.
func describeESNIServerHello(buf []byte, r *client.Result) (string, error) {
	sh, err := ech.ParseServerHelloRecords(buf)
	if err != nil {
		return "", fmt.Errorf("lab: the server's answer: %w", err)
	}
	v := sh.Version
	if sh.SupportedVersion != 0 {
		v = sh.SupportedVersion
	}
	r.Version, r.Cipher, r.Group = observe.VersionName(v), observe.CipherName(sh.CipherSuite), observe.GroupName(sh.KeyShareGroup)
	if sh.IsHRR {
		return "a HelloRetryRequest (" + r.Group + ")", nil
	}
	return fmt.Sprintf("a ServerHello (%s, %s, %s) that went on without ESNI: the server ignores encrypted_server_name",
		r.Version, r.Cipher, r.Group), nil
}

// alertName names the TLS alerts a server may send to a ClientHello.
func alertName(d byte) string {
	names := map[byte]string{40: "handshake_failure", 47: "illegal_parameter", 50: "decode_error", 70: "protocol_version",
		80: "internal_error", 109: "missing_extension", 110: "unsupported_extension", 112: "unrecognized_name", 120: "no_application_protocol"}
	if n, ok := names[d]; ok {
		return n
	}
	return "unknown"
}

// judgeESNI passes an esni case when the ClientHello was sent and the
// server answered it with a ServerHello, as a server without ESNI does.
func judgeESNI(r *client.Result, err error) (Outcome, string) {
	switch {
	case r == nil:
		return OutcomeFailed, fmt.Sprint(err)
	case err != nil:
		return OutcomeFailed, fmt.Sprintf("esni: %v", err)
	case r.Version == "":
		return OutcomeFailed, "esni: no ServerHello"
	}
	return OutcomeOK, r.Note
}
