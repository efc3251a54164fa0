package observe

import (
	"cmp"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
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
	// Adversary is an on-path adversary's decision log (see
	// ReadAdversaryLog): each decision is joined to the flow it acted on,
	// by the client's address, port and protocol, the SNI or DNS question
	// and the time, and marks it (Flow.FlowAdversary); Report.Adversary
	// sums up what the adversary did.
	Adversary *AdversaryLog

	// OnFlow, when set, streams the flows: each is passed to OnFlow as
	// soon as later packets cannot change it (a TCP connection closed on
	// both sides by FIN or RST; every other flow at the end of the
	// capture, in the order its connection began), and flows are numbered
	// in that order, which is the order of the calls. Report.Flows then
	// keeps only the first KeepFlows flows, so memory does not grow with
	// the number of flows; Report.Summary is the same as without OnFlow.
	// An error from OnFlow stops the reading and is returned by Compare.
	OnFlow func(*Flow) error
	// KeepFlows is how many of the first flows Report.Flows keeps when
	// OnFlow is set (0: none). Without OnFlow, every flow is kept.
	KeepFlows int
	// Built, when set, is called with the number of flows built so far
	// each time one more is: a progress hook, called on Compare's
	// goroutine, which must return quickly.
	Built func(flows int)

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
	// TotalFlows is the number of flows in the capture: len(Flows), unless
	// CompareOptions.OnFlow streamed them and Flows keeps only the first.
	TotalFlows int `json:"total_flows"`
	// UnlistedWarnings counts the warnings of the flows that Flows does not
	// keep (streaming).
	UnlistedWarnings int `json:"unlisted_warnings,omitempty"`
	// Adversary is what the adversary did, with CompareOptions.Adversary.
	Adversary *AdversarySummary `json:"adversary,omitempty"`
}

// flowCount is TotalFlows, or len(Flows) for a Report built without it.
func (r *Report) flowCount() int { return max(r.TotalFlows, len(r.Flows)) }

// unlisted is the number of flows that Flows does not keep.
func (r *Report) unlisted() int { return r.flowCount() - len(r.Flows) }

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
	first, last    time.Time
	done           *Flow // the finished connection's flow (nil for UDP that is neither DNS nor QUIC)
	finished       bool  // later packets are ignored; halves are dropped
	proto          uint8
	a, b           netip.AddrPort
	client         netip.AddrPort // zero until known
	halves         [2]*tcpHalf    // TCP: the bytes sent from a, from b
	quic           *quicConn
	dns            []DNSMessage
	dnsGarbage     int
	otherDatagrams int
	slot           int      // index in connTable.order
	free           *bufFree // the table's, for the halves' buffers
}

// Compare reads a pcap or pcapng capture and returns the observer's view of
// every TCP, QUIC and plain DNS flow in it, with a privacy summary. A file
// that is not a capture, or whose header is cut, is an error; damage inside
// the file becomes warnings on the report or on the flows it touches. The
// capture is read as a stream: memory follows the connections open at once
// (see maxKept and conn.finish) and, with OnFlow, not the number of flows
// either. Without OnFlow, flows are numbered in the order they began (their
// first packet's time; ties in capture order).
func Compare(r io.Reader, opts CompareOptions) (*Report, error) {
	open := opts.opener()
	rep := &Report{}
	b := &flowBuilder{opts: &opts, rep: rep, adv: newAdvJoin(opts.Adversary)}
	t := &connTable{conns: map[connKey]*conn{}, open: open, built: b.built}
	if opts.OnFlow != nil {
		t.emit = b.stream
	}
	meta, err := capture.Read(&stopReader{r: r, err: &t.err}, t.add)
	if t.err != nil {
		return nil, t.err
	}
	if err != nil {
		return nil, err
	}
	rep.Format, rep.Comment, rep.Packets = meta.Format, meta.Comment, meta.Packets
	rep.Synthesized, rep.Warnings = meta.Comment == capture.SynthComment, append(meta.Warnings, opts.keylogWarnings...)
	var flows []*Flow
	for _, c := range t.order {
		if c == nil {
			continue
		}
		f := c.done
		if !c.finished {
			if f = c.flow(open); f != nil {
				t.built()
			}
		}
		if f == nil {
			continue
		}
		if opts.OnFlow != nil {
			if err := b.stream(f); err != nil {
				return nil, err
			}
			continue
		}
		b.label(f)
		flows = append(flows, f)
	}
	if opts.OnFlow == nil {
		slices.SortStableFunc(flows, func(x, y *Flow) int { return x.Start.Compare(y.Start) })
		for _, f := range flows {
			b.number(f)
		}
		rep.Flows = flows
	}
	rep.TotalFlows = b.n
	if w := windowWarning(b.windowIDs); w != "" {
		rep.Warnings = append(rep.Warnings, w)
	}
	rep.Summary = b.sum.result()
	rep.Adversary = b.adv.result()
	return rep, nil
}

// flowBuilder labels, numbers and sums up the flows Compare builds.
type flowBuilder struct {
	opts      *CompareOptions
	rep       *Report
	n         int // flows numbered
	nBuilt    int
	sum       summarizer
	windowIDs []int    // flows joined to their scenario by a time window only
	adv       *advJoin // nil without CompareOptions.Adversary
}

func (b *flowBuilder) built() {
	b.nBuilt++
	if b.opts.Built != nil {
		b.opts.Built(b.nBuilt)
	}
}

// label fills what the options add to a built flow: the ESNI name, the
// keylog mark and the scenario.
func (b *flowBuilder) label(f *Flow) {
	f.openESNI(b.opts.ESNIKeys)
	f.Keylog = b.opts.Keylog[f.ClientRandom] || (f.innerRandom != nil && b.opts.Keylog[hex.EncodeToString(f.innerRandom)])
	f.Scenario, f.ScenarioBy = joinScenario(f, b.opts.Scenarios)
	b.adv.join(f)
}

// number gives f the next ID and adds it to the summary.
func (b *flowBuilder) number(f *Flow) {
	b.n++
	f.ID = b.n
	b.sum.add(f)
	if b.adv != nil {
		b.adv.sum.add(f)
	}
	if f.ScenarioBy == JoinTimeWindow {
		b.windowIDs = append(b.windowIDs, f.ID)
	}
}

// stream labels, numbers and hands over one flow (CompareOptions.OnFlow),
// keeping it only among the first KeepFlows.
func (b *flowBuilder) stream(f *Flow) error {
	b.label(f)
	b.number(f)
	if b.n <= b.opts.KeepFlows {
		b.rep.Flows = append(b.rep.Flows, f)
	} else {
		b.rep.UnlistedWarnings += len(f.Warnings)
	}
	return b.opts.OnFlow(f)
}

// stopReader ends the capture's reading with *err once it is set (an
// OnFlow error).
type stopReader struct {
	r   io.Reader
	err *error
}

func (s *stopReader) Read(p []byte) (int, error) {
	if *s.err != nil {
		return 0, *s.err
	}
	return s.r.Read(p)
}

// maxGraves bounds the finished TCP connections whose later packets are
// still recognised (and ignored): a packet of a connection that finished
// before the last maxGraves others begins a new one, as a packet of an
// unknown connection does.
const maxGraves = 1 << 16

// grave stands, in connTable.conns, for a finished connection whose flow
// is built: later packets are ignored (it is finished) and a SYN begins a
// new connection (it has data). It is never changed.
var grave = &conn{finished: true}

// connTable files a capture's packets, as they are read, under their
// connections, in the order the connections began.
type connTable struct {
	order      []*conn // nil where a streamed connection was
	holes      int     // nil entries in order
	conns      map[connKey]*conn
	free       bufFree
	graves     []connKey // the keys of the last finished connections, a ring
	grave      int       // next slot of graves
	graveLimit int       // len(graves) at most; 0 means maxGraves
	open       opener
	built      func()            // counts a flow built
	emit       func(*Flow) error // streaming: hands over a finished connection's flow
	err        error             // emit's error: reading stops
}

// add files one packet; a SYN on a connection that already carried data
// begins a new one. A TCP FIN or RST may finish its connection.
func (t *connTable) add(p *capture.Packet) {
	if t.err != nil {
		return
	}
	k := keyOf(p)
	c := t.conns[k]
	if c == nil || (p.Proto == 6 && p.Flags&(capture.TCPSYN|capture.TCPACK) == capture.TCPSYN && c.hasData()) {
		c = &conn{first: p.TS, proto: p.Proto, a: k.a, b: k.b, slot: len(t.order), free: &t.free}
		t.conns[k] = c
		t.order = append(t.order, c)
	}
	if c.finished {
		return
	}
	c.add(p)
	if p.Proto == 6 && p.Flags&(capture.TCPFIN|capture.TCPRST) != 0 {
		c.finish(t.open)
		if c.finished {
			t.finished(k, c)
		}
	}
}

// finished files a connection that finish just built: its key now leads
// to grave, and, streaming, its flow is handed over and the connection
// dropped.
func (t *connTable) finished(k connKey, c *conn) {
	if t.built != nil {
		t.built()
	}
	t.conns[k] = grave
	limit := cmp.Or(t.graveLimit, maxGraves)
	if len(t.graves) < limit {
		t.graves = append(t.graves, k)
	} else {
		if old := t.graves[t.grave]; t.conns[old] == grave {
			delete(t.conns, old)
		}
		t.graves[t.grave] = k
		t.grave = (t.grave + 1) % limit
	}
	if t.emit == nil {
		return
	}
	t.order[c.slot] = nil
	t.holes++
	if c.done != nil {
		t.err = t.emit(c.done)
	}
	if t.holes > 1024 && t.holes > len(t.order)/2 {
		t.compact()
	}
}

// compact drops the streamed connections' places from order.
func (t *connTable) compact() {
	kept := t.order[:0]
	for _, c := range t.order {
		if c != nil {
			c.slot = len(kept)
			kept = append(kept, c)
		}
	}
	clear(t.order[len(kept):])
	t.order, t.holes = kept, 0
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
	if c.finished || c.proto != 6 || !c.client.IsValid() || c.halves[0] == nil || c.halves[1] == nil ||
		!c.halves[0].complete() || !c.halves[1].complete() {
		return
	}
	c.done, c.finished = c.flow(open), true
	for _, h := range c.halves {
		h.free.put(h.buf)
	}
	c.halves = [2]*tcpHalf{}
}

// half is where the bytes sent from one end are filed.
func (c *conn) half(from netip.AddrPort) **tcpHalf {
	if from == c.a {
		return &c.halves[0]
	}
	return &c.halves[1]
}

func (c *conn) hasData() bool {
	if c.finished {
		return true
	}
	for _, h := range c.halves {
		if h != nil && (h.bytes > 0 || h.fin || h.rst) {
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
	if p.TS.After(c.last) {
		c.last = p.TS
	}
	switch p.Proto {
	case 6:
		hp := c.half(p.Src)
		h := *hp
		if h == nil {
			// DNS over TCP on port 53 is read whole (up to maxKept),
			// whatever its first byte.
			dns := p.Src.Port() == 53 || p.Dst.Port() == 53
			h = &tcpHalf{notTLS: dns, dns: dns, free: c.free}
			*hp = h
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
		if h, err := parseLongHeader(b); err == nil && h.Initial && len(h.DCID) >= 8 {
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
