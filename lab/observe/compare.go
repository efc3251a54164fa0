package observe

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"time"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/lab/capture"
)

// CompareOptions configure Compare. The zero value reads a capture with no
// keys, no keylog and no scenario map.
type CompareOptions struct {
	// Keys opens ECH payloads: flows whose payload opens are "real" and
	// show the inner SNI and ALPN, and the server's acceptance is checked.
	// *ech.KeySet (from ech.LoadKeySet) and ech.KeyList satisfy it.
	Keys ech.KeySource
	// Keylog holds SSLKEYLOGFILE client randoms (see ReadKeylog); flows
	// whose outer or inner client_random is in it are marked.
	Keylog map[string]bool
	// ECHSecrets open ECH payloads without the server's key: the
	// ECH_SECRET and ECH_CONFIG lines of a keylog, by outer client_random
	// (see ParseKeylog and UseKeylog). Keys are tried first.
	ECHSecrets map[string]*KeylogECH
	// Scenarios label flows (see ReadScenarioMap). Without rules, a flow's
	// scenario is its service and server port, e.g. "h2/8443".
	Scenarios []ScenarioRule
	// ESNIKeys decrypt the server name of legacy ESNI ClientHellos
	// (extension 0xffce) whose record_digest they match.
	ESNIKeys []*ech.ESNIKeySet

	keylogWarnings []string
}

// Report is the result of Compare.
type Report struct {
	Format      string            `json:"format"`      // "pcap" or "pcapng"
	Synthesized bool              `json:"synthesized"` // written by a Recorder, not a packet socket
	Comment     string            `json:"comment,omitempty"`
	Packets     int               `json:"packets"`
	Flows       []*Flow           `json:"flows"`
	Summary     []ScenarioSummary `json:"summary"`
	Warnings    []string          `json:"warnings,omitempty"`
}

// connKey names a connection independent of direction.
type connKey struct {
	a, b  netip.AddrPort
	proto uint8
}

func keyOf(p *capture.Packet) connKey {
	a, b := p.Src, p.Dst
	if b.Compare(a) < 0 {
		a, b = b, a
	}
	return connKey{a, b, p.Proto}
}

// conn gathers the packets of one connection until the capture ends, or,
// for TCP, until both directions are complete (see finish).
type conn struct {
	first          time.Time
	done           *Flow // the finished connection's flow (nil for UDP that is neither DNS nor QUIC)
	finished       bool  // later packets are ignored; halves are dropped
	proto          uint8
	a, b           netip.AddrPort
	client         netip.AddrPort // zero until known
	halves         map[netip.AddrPort]*tcpHalf
	quic           *quicConn
	dns            []DNSMessage
	dnsGarbage     int
	otherDatagrams int
}

// Compare reads a pcap or pcapng capture and returns the observer's view of
// every TCP, QUIC and plain DNS flow in it, with a privacy summary. A file
// that is not a capture, or whose header is cut, is an error; damage inside
// the file becomes warnings on the report or on the flows it touches. The
// capture is read as a stream: memory follows the connections open at once
// (see maxKept and conn.finish), not the size of r.
func Compare(r io.Reader, opts CompareOptions) (*Report, error) {
	open := opts.opener()
	t := &connTable{conns: map[connKey]*conn{}, open: open}
	meta, err := capture.Read(r, t.add)
	if err != nil {
		return nil, err
	}
	rep := &Report{Format: meta.Format, Comment: meta.Comment, Packets: meta.Packets,
		Synthesized: meta.Comment == capture.SynthComment, Warnings: append(meta.Warnings, opts.keylogWarnings...)}
	for _, c := range t.order {
		f := c.done
		if !c.finished {
			f = c.flow(open)
		}
		if f == nil {
			continue
		}
		f.openESNI(opts.ESNIKeys)
		f.ID = len(rep.Flows) + 1
		f.Keylog = opts.Keylog[f.ClientRandom] || (f.innerRandom != nil && opts.Keylog[fmt.Sprintf("%x", f.innerRandom)])
		f.Scenario, f.ScenarioBy = joinScenario(f, opts.Scenarios)
		rep.Flows = append(rep.Flows, f)
	}
	sort.SliceStable(rep.Flows, func(i, j int) bool { return rep.Flows[i].Start.Before(rep.Flows[j].Start) })
	for i, f := range rep.Flows {
		f.ID = i + 1
	}
	if w := windowWarning(rep.Flows); w != "" {
		rep.Warnings = append(rep.Warnings, w)
	}
	rep.Summary = summarize(rep.Flows)
	return rep, nil
}

// connTable files a capture's packets, as they are read, under their
// connections, in the order the connections began.
type connTable struct {
	order []*conn
	conns map[connKey]*conn
	open  opener
}

// add files one packet; a SYN on a connection that already carried data
// begins a new one. A TCP FIN or RST may finish its connection.
func (t *connTable) add(p *capture.Packet) {
	k := keyOf(p)
	c := t.conns[k]
	if c == nil || (p.Proto == 6 && p.Flags&(capture.TCPSYN|capture.TCPACK) == capture.TCPSYN && c.hasData()) {
		c = &conn{first: p.TS, proto: p.Proto, a: k.a, b: k.b}
		t.conns[k] = c
		t.order = append(t.order, c)
	}
	c.add(p)
	if p.Proto == 6 && p.Flags&(capture.TCPFIN|capture.TCPRST) != 0 {
		c.finish(t.open)
	}
}

// opener opens with the keys, then with the keylog's ECH secret for the
// ClientHello's outer random; nil when there are neither.
func (o CompareOptions) opener() opener {
	if o.Keys == nil && len(o.ECHSecrets) == 0 {
		return nil
	}
	return func(outer *ech.ClientHello) (*ech.Opened, error) {
		err := fmt.Errorf("lab: no key and no logged ECH secret: %w", ech.ErrDecrypt)
		if o.Keys != nil {
			var opened *ech.Opened
			if opened, err = ech.Open(o.Keys, outer, nil); err == nil || !errors.Is(err, ech.ErrDecrypt) {
				return opened, err
			}
		}
		if e := o.ECHSecrets[hex.EncodeToString(outer.Random)]; e != nil {
			return ech.OpenWithSecret(e.Config, e.Secret, outer)
		}
		return nil, err
	}
}

// finish builds a TCP connection's flow as soon as later packets cannot
// change it (the client is known and both directions are complete: see
// tcpHalf.complete), and drops its buffers: the connections of a capture
// are held only while they are open.
func (c *conn) finish(open opener) {
	if c.finished || c.proto != 6 || !c.client.IsValid() || len(c.halves) != 2 {
		return
	}
	for _, h := range c.halves {
		if !h.complete() {
			return
		}
	}
	c.done, c.finished, c.halves = c.flow(open), true, nil
}

func (c *conn) hasData() bool {
	if c.finished {
		return true
	}
	for _, h := range c.halves {
		if h.bytes > 0 || h.fin || h.rst {
			return true
		}
	}
	return false
}

// add files one packet under its direction. p.Payload is only valid
// during the call: what is kept is copied.
func (c *conn) add(p *capture.Packet) {
	if c.finished {
		return
	}
	switch p.Proto {
	case 6:
		if c.halves == nil {
			c.halves = map[netip.AddrPort]*tcpHalf{}
		}
		h := c.halves[p.Src]
		if h == nil {
			// DNS over TCP on port 53 is read whole (up to maxKept),
			// whatever its first byte.
			dns := p.Src.Port() == 53 || p.Dst.Port() == 53
			h = &tcpHalf{notTLS: dns, dns: dns}
			c.halves[p.Src] = h
		}
		h.add(p)
		if p.Flags&(capture.TCPSYN|capture.TCPACK) == capture.TCPSYN && !c.client.IsValid() {
			c.client = p.Src
		}
	case 17:
		c.addUDP(p)
	}
}

func (c *conn) addUDP(p *capture.Packet) {
	b := p.Payload
	if c.quic != nil {
		if c.quic.initials < 64 && len(b) > 0 && b[0]&0x80 != 0 {
			c.quic.addDatagram(p.Src == c.client, b)
		}
		return
	}
	dnsPort := p.Src.Port() == 53 || p.Dst.Port() == 53
	// A client's first Initial travels in a datagram of at least 1200
	// bytes with a DCID of at least 8 (RFC 9000 §14.1, §7.2): that tells the
	// client from the server.
	if !dnsPort && len(c.dns) == 0 && len(b) >= 1200 && b[0]&0xc0 == 0xc0 {
		if h, err := parseLongHeader(b); err == nil && h.initial && len(h.dcid) >= 8 {
			c.quic, c.client = &quicConn{}, p.Src
			c.quic.addDatagram(true, b)
			return
		}
	}
	m, ok := parseDNS(b, p.TS)
	switch {
	case ok:
		c.dns = append(c.dns, m)
		if !c.client.IsValid() && !m.Response {
			c.client = p.Src
		}
	case dnsPort || len(c.dns) > 0:
		c.dnsGarbage++
	default:
		c.otherDatagrams++
	}
}
