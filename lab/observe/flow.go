package observe

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/echlab/echlab/ech"
)

// Transports of a Flow.
const (
	TransportTCP    = "tcp"     // TLS (or anything else) over TCP
	TransportQUIC   = "quic"    // QUIC, read through its Initial packets
	TransportUDPDNS = "udp-dns" // plain DNS over UDP (Do53)
	TransportTCPDNS = "tcp-dns" // plain DNS over TCP (Do53)
)

// ECH states of a Flow as the observer can tell them.
const (
	ECHNone        = ""                      // no encrypted_client_hello extension
	ECHOuter       = "ech-outer"             // an outer ECH extension (real or GREASE: without keys, one cannot tell)
	ECHReal        = "real"                  // with keys: the payload opened
	ECHGreaseOrKey = "grease-or-unknown-key" // with keys: no key opened it
	// ECHInnerClear is an encrypted_client_hello extension of type inner:
	// a ClientHelloInner sent in the clear, as a split-mode front forwards
	// it to its backend. Its server_name is the true name.
	ECHInnerClear = "inner"
)

// Flow is the observer's view of one connection (or, for Do53 over UDP, of
// one client socket talking to a server).
type Flow struct {
	ID          int            `json:"id"`
	Scenario    string         `json:"scenario"`
	ScenarioBy  string         `json:"scenario_by,omitempty"` // how Scenario was joined (Join* constants); "" when no rule matched
	Start       time.Time      `json:"start"`
	Client      netip.AddrPort `json:"client"`
	Server      netip.AddrPort `json:"server"`
	Transport   string         `json:"transport"`
	QUICVersion string         `json:"quic_version,omitempty"` // "v1" or "v2" for QUIC flows
	Service     string         `json:"service,omitempty"`      // dns, dot, doq, h3, h2, http/1.1, tls

	SNI            string   `json:"sni,omitempty"`
	ALPN           []string `json:"alpn,omitempty"`
	ClientHelloLen int      `json:"client_hello_len,omitempty"` // handshake message, header included
	RecordLen      int      `json:"record_len,omitempty"`       // TLS records that carried it (TCP only)
	JA4            string   `json:"ja4,omitempty"`
	ClientRandom   string   `json:"client_random,omitempty"`

	ECH           string   `json:"ech,omitempty"` // see the ECH* constants
	ECHConfigID   *uint8   `json:"ech_config_id,omitempty"`
	ECHKDF        uint16   `json:"ech_kdf,omitempty"`
	ECHAEAD       uint16   `json:"ech_aead,omitempty"`
	ECHEncLen     int      `json:"ech_enc_len,omitempty"`
	ECHPayloadLen int      `json:"ech_payload_len,omitempty"`
	InnerSNI      string   `json:"inner_sni,omitempty"`
	InnerALPN     []string `json:"inner_alpn,omitempty"`
	ECHAccepted   *bool    `json:"ech_accepted,omitempty"` // with keys and a ServerHello: verified confirmation
	// ECHOpenedBy says what opened the payload: "key" (a server key set)
	// or "keylog" (the ECH_SECRET and ECH_CONFIG lines of a keylog).
	ECHOpenedBy string `json:"ech_opened_by,omitempty"`
	// ECHInnerInClear marks a ClientHelloInner sent in the clear (ECH is
	// ECHInnerClear): SNI and ALPN are the inner ones, readable on this hop.
	ECHInnerInClear bool `json:"ech_inner_in_clear,omitempty"`

	HRR           bool   `json:"hrr,omitempty"`
	ServerVersion uint16 `json:"server_version,omitempty"`
	ServerCipher  uint16 `json:"server_cipher,omitempty"`
	ServerGroup   uint16 `json:"server_group,omitempty"`

	Keylog bool `json:"keylog,omitempty"` // the keylog file has this client_random
	// ProxyHeader: the client's stream began with a PROXY protocol v2
	// header (a split front telling its backend the client's address and
	// its ECH verdict), which was skipped to read the ClientHello.
	ProxyHeader bool         `json:"proxy_header,omitempty"`
	DNS         []DNSMessage `json:"dns,omitempty"`

	Warnings []string `json:"warnings,omitempty"`

	FlowESNI      // legacy ESNI (esni.go)
	FlowAdversary // what an on-path adversary did (adversary_join.go)

	innerRandom []byte
	end         time.Time // the last packet's time
}

func (f *Flow) warn(format string, args ...any) {
	f.Warnings = append(f.Warnings, fmt.Sprintf(format, args...))
}

// opener opens an outer ClientHello; Compare builds one from its options.
type opener func(outer *ech.ClientHello) (*ech.Opened, error)

// hellos are the handshake messages found at the start of a connection.
type hellos struct {
	ch1, ch2 *ech.ClientHello // ch2 follows a HelloRetryRequest
	sh1, sh2 *ech.ServerHello // sh1 may be the HRR
	chRecLen int
}

// dissect fills the flow from its hellos: what the observer sees, then
// what the keys reveal.
func (f *Flow) dissect(h hellos, quic bool, open opener) {
	ch := h.ch1
	if ch == nil {
		return
	}
	f.SNI, f.ALPN = ch.ServerName, ch.ALPN
	f.ClientHelloLen, f.RecordLen = len(ch.Raw), h.chRecLen
	f.JA4 = clientHelloJA4(ch, quic)
	f.ClientRandom = hex.EncodeToString(ch.Random)
	f.Service = flowService(f.Transport, f.Server.Port(), ch.ALPN)
	f.observeECH(ch.ECH)
	f.observeESNI(ch)
	if sh := h.sh1; sh != nil {
		f.HRR = sh.IsHRR
		final := sh
		if sh.IsHRR {
			final = h.sh2
		}
		if final != nil {
			f.ServerVersion, f.ServerCipher, f.ServerGroup = final.Version, final.CipherSuite, final.KeyShareGroup
			if final.SupportedVersion != 0 {
				f.ServerVersion = final.SupportedVersion
			}
		} else {
			f.ServerGroup = sh.KeyShareGroup
		}
	}
	if open != nil && f.ECH == ECHOuter {
		f.openECH(h, open)
	}
}

// observeECH reads the encrypted_client_hello extension as the observer
// sees it: the outer fields, or an inner hello that travels in the clear.
func (f *Flow) observeECH(e *ech.ECHClientHello) {
	switch {
	case e == nil:
	case e.Type == ech.ECHOuter:
		id := e.ConfigID
		f.ECH, f.ECHConfigID = ECHOuter, &id
		f.ECHKDF, f.ECHAEAD = e.CipherSuite.KDF, e.CipherSuite.AEAD
		f.ECHEncLen, f.ECHPayloadLen = len(e.Enc), len(e.Payload)
	case e.Type == ech.ECHInner:
		f.ECH, f.ECHInnerInClear = ECHInnerClear, true
	}
}

// openECH decrypts the inner ClientHello and checks the server's
// acceptance signal.
func (f *Flow) openECH(h hellos, open opener) {
	opened, err := open(h.ch1)
	if err != nil {
		f.ECH = ECHGreaseOrKey
		if !errors.Is(err, ech.ErrDecrypt) {
			f.warn("ech: opening the payload: %v", err)
		}
		return
	}
	inner := opened.Inner
	f.ECH, f.InnerSNI, f.InnerALPN, f.innerRandom = ECHReal, inner.ServerName, inner.ALPN, inner.Random
	f.ECHOpenedBy = "key"
	if opened.Key == nil {
		f.ECHOpenedBy = "keylog"
	}
	if h.sh1 == nil {
		return
	}
	var ok bool
	switch {
	case !h.sh1.IsHRR:
		ok, err = ech.VerifyAccepted(inner.Raw, h.sh1.Raw)
	case h.sh2 != nil && h.ch2 != nil && opened.Context != nil:
		second, err2 := opened.Context.OpenSecond(h.ch2)
		if err2 != nil {
			f.warn("ech: opening the ClientHello after HelloRetryRequest: %v", err2)
			ok, err = ech.VerifyHRRAccepted(inner.Raw, h.sh1.Raw)
			break
		}
		ok, err = ech.VerifyAcceptedAfterHRR(inner.Raw, h.sh1.Raw, second.Inner.Raw, h.sh2.Raw)
	default:
		ok, err = ech.VerifyHRRAccepted(inner.Raw, h.sh1.Raw)
	}
	if err != nil {
		f.warn("ech: checking acceptance: %v", err)
		return
	}
	f.ECHAccepted = &ok
}

// flowService names what a TLS or QUIC flow carries, from its ALPN and port.
func flowService(transport string, port uint16, alpn []string) string {
	for _, a := range alpn {
		switch a {
		case "dot", "doq", "h3":
			return a
		}
	}
	switch {
	case port == 853 && transport == TransportTCP:
		return "dot"
	case port == 853 && transport == TransportQUIC:
		return "doq"
	case len(alpn) > 0:
		return alpn[0]
	case transport == TransportQUIC:
		return "quic"
	}
	return "tls"
}

// flow builds the observer's view of a connection, or nil for UDP traffic
// that is neither DNS nor QUIC.
func (c *conn) flow(open opener) *Flow {
	f := &Flow{Start: c.first, end: c.last}
	switch {
	case c.proto == 17 && c.quic != nil:
		f.Transport = TransportQUIC
		f.Client, f.Server = c.client, c.other(c.client)
		f.fromQUIC(c.quic, open)
	case c.proto == 17 && (len(c.dns) > 0 || c.dnsGarbage > 0):
		f.Transport, f.Service, f.DNS = TransportUDPDNS, "dns", c.dns
		f.Client, f.Server = c.dnsRoles()
		if c.dnsGarbage > 0 {
			f.warn("dns: %d datagrams on port 53 did not parse as DNS", c.dnsGarbage)
		}
	case c.proto == 6:
		c.fromTCP(f, open)
	default:
		return nil
	}
	return f
}

func (c *conn) other(x netip.AddrPort) netip.AddrPort {
	if x == c.a {
		return c.b
	}
	return c.a
}

func (c *conn) dnsRoles() (client, server netip.AddrPort) {
	if c.client.IsValid() {
		return c.client, c.other(c.client)
	}
	if c.a.Port() == 53 {
		return c.b, c.a
	}
	return c.a, c.b
}

// fromTCP reassembles both directions and reads DNS or TLS from them.
func (c *conn) fromTCP(f *Flow, open opener) {
	if !c.client.IsValid() {
		c.client = c.guessTCPClient()
	}
	f.Client, f.Server = c.client, c.other(c.client)
	up, down := c.stream(f.Client), c.stream(f.Server)
	for _, s := range []reassembled{up, down} {
		if s.warning != "" {
			f.warn("%s", s.warning)
		}
	}
	if n := proxyV2Len(up.data); n > 0 {
		f.ProxyHeader, up.data = true, up.data[n:]
	}
	if f.Client.Port() == 53 || f.Server.Port() == 53 || looksLikeDNS(up.data) {
		f.Transport, f.Service = TransportTCPDNS, "dns"
		m1, g1 := parseDNSStream(up.data, up.start)
		m2, g2 := parseDNSStream(down.data, down.start)
		f.DNS = append(m1, m2...)
		if g1 || g2 {
			f.warn("dns: garbage in the DNS-over-TCP stream")
		}
		return
	}
	f.Transport = TransportTCP
	if len(up.data) == 0 {
		f.warn("tcp: the client sent no data")
		return
	}
	f.dissect(tlsHellos(f, up.data, down.data), false, open)
}

func (c *conn) stream(from netip.AddrPort) reassembled {
	if h := *c.half(from); h != nil {
		return h.stream()
	}
	return reassembled{}
}

// guessTCPClient picks the client of a connection whose SYN was not
// captured: the side that sent a TLS ClientHello, else the higher port.
func (c *conn) guessTCPClient() netip.AddrPort {
	for _, x := range []netip.AddrPort{c.a, c.b} {
		s := c.stream(x).data
		s = s[proxyV2Len(s):]
		if len(s) > 5 && s[0] == 22 && s[5] == 1 {
			return x
		}
	}
	if c.a.Port() > c.b.Port() {
		return c.a
	}
	return c.b
}

// tlsHellos reads the ClientHello(s) and ServerHello(s) at the start of a
// TLS connection's two streams. Problems become warnings on f.
func tlsHellos(f *Flow, up, down []byte) hellos {
	var h hellos
	msg, n, err := handshakeMsg(up)
	if err != nil {
		f.warn("tls: no ClientHello in the client's stream: %v", err)
		return h
	}
	if h.ch1, err = ech.ParseClientHello(msg); err != nil {
		f.warn("tls: ClientHello: %v", err)
		return h
	}
	h.chRecLen = n
	msg, m, err := handshakeMsg(down)
	if err != nil {
		if len(down) > 0 {
			f.warn("tls: no ServerHello in the server's stream: %v", err)
		}
		return h
	}
	if h.sh1, err = ech.ParseServerHello(msg); err != nil {
		f.warn("tls: ServerHello: %v", err)
		return h
	}
	if h.sh1.IsHRR {
		if msg, _, err := handshakeMsg(up[n:]); err == nil {
			h.ch2, _ = ech.ParseClientHello(msg)
		}
		if msg, _, err := handshakeMsg(down[m:]); err == nil {
			h.sh2, _ = ech.ParseServerHello(msg)
		}
	}
	return h
}

// handshakeMsg is ech.HandshakeFromRecords without its copy when the
// first record is a handshake record that holds the whole first message
// (the usual case): the message then points into b. The parsers copy
// what they keep.
func handshakeMsg(b []byte) (msg []byte, n int, err error) {
	if len(b) >= 9 && b[0] == 22 && b[1] == 3 {
		length := int(b[3])<<8 | int(b[4])
		if length >= 4 && length <= 1<<14 && len(b)-5 >= length {
			total := 4 + (int(b[6])<<16 | int(b[7])<<8 | int(b[8]))
			if total <= length {
				return b[5 : 5+total : 5+total], 5 + length, nil
			}
		}
	}
	return ech.HandshakeFromRecords(b)
}

// fromQUIC reads the hellos from the CRYPTO frames of the Initial packets.
func (f *Flow) fromQUIC(q *quicConn, open opener) {
	f.Warnings = append(f.Warnings, q.warnings...)
	switch q.version {
	case QUICv1:
		f.QUICVersion = "v1"
	case QUICv2:
		f.QUICVersion = "v2"
	}
	if q.retry {
		f.warn("quic: the server sent a Retry")
	}
	var h hellos
	msg, ok := firstMessage(assembleCrypto(q.client.crypto))
	if !ok {
		f.warn("quic: no complete ClientHello in the client's Initial packets")
		return
	}
	var err error
	if h.ch1, err = ech.ParseClientHello(msg); err != nil {
		f.warn("quic: ClientHello: %v", err)
		return
	}
	if msg, ok := firstMessage(assembleCrypto(q.server.crypto)); ok {
		if h.sh1, err = ech.ParseServerHello(msg); err != nil {
			f.warn("quic: ServerHello: %v", err)
		}
	}
	f.dissect(h, true, open)
}

// firstMessage returns the first whole handshake message of a CRYPTO
// stream.
func firstMessage(b []byte) ([]byte, bool) {
	if len(b) < 4 {
		return nil, false
	}
	n := 4 + (int(b[1])<<16 | int(b[2])<<8 | int(b[3]))
	if len(b) < n {
		return nil, false
	}
	return b[:n], true
}

// proxyV2Sig is the signature of a PROXY protocol v2 header (haproxy's
// proxy-protocol.txt §2.2).
const proxyV2Sig = "\r\n\r\n\x00\r\nQUIT\n"

// proxyV2Len returns the length of the PROXY protocol v2 header that b
// starts with (signature, version/command, family, 16-bit length, then
// that many bytes), or 0 when b does not start with a whole one.
func proxyV2Len(b []byte) int {
	if len(b) < 16 || string(b[:12]) != proxyV2Sig || b[12]>>4 != 2 {
		return 0
	}
	n := 16 + (int(b[14])<<8 | int(b[15]))
	if len(b) < n {
		return 0
	}
	return n
}

// looksLikeDNS reports whether a TCP stream that is not TLS starts with a
// whole DNS message: the lab's resolver listens on random ports, not 53.
func looksLikeDNS(b []byte) bool {
	if len(b) == 0 || b[0] == 22 {
		return false
	}
	msgs, garbage := parseDNSStream(b, time.Time{})
	return len(msgs) > 0 && !garbage
}
