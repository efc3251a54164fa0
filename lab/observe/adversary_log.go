package observe

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"time"
)

// Actions of an adversary decision, as lab/adversary logs them (the
// names of capture.Verdict, and "rewrite" for a rewritten DNS answer).
const (
	AdversaryPass          = "pass"
	AdversaryDrop          = "drop"
	AdversaryRST           = "rst"
	AdversaryRSTAfterReply = "rst-after-reply"
	AdversaryRewrite       = "rewrite"
)

// adversaryRank orders the actions by how much they changed a flow: a
// flow the adversary acted on several times (a QUIC flow's datagrams, a
// Do53 connection's messages) shows the strongest.
var adversaryRank = map[string]int{AdversaryPass: 1, AdversaryRewrite: 2, AdversaryDrop: 3,
	AdversaryRSTAfterReply: 4, AdversaryRST: 5}

// AdversaryFlow is the connection or datagram a decision was about, as the
// adversary's relay saw it.
type AdversaryFlow struct {
	Role    string         `json:"role"`  // "https/shared", "dns/do53", …
	Proto   string         `json:"proto"` // "tcp" or "udp"
	Client  netip.AddrPort `json:"client"`
	Relay   netip.AddrPort `json:"relay"`
	Backend string         `json:"backend"`
}

// AdversaryDecision is one line of an adversary decision log: what
// lab/adversary's Decision writes, with the grid cell's row and column
// (echlab run --adversary's adversary.jsonl) or the column alone (echlab
// observe --adversary's).
type AdversaryDecision struct {
	Line   int           `json:"-"` // in the log, from 1
	Time   time.Time     `json:"time"`
	Row    string        `json:"row,omitempty"`
	Column string        `json:"column,omitempty"`
	Policy string        `json:"policy,omitempty"` // "" for a pass no policy matched
	Action string        `json:"action"`           // the Adversary* constants
	Flow   AdversaryFlow `json:"flow"`
	SNI    string        `json:"sni,omitempty"`
	ECH    bool          `json:"ech,omitempty"`
	QName  string        `json:"qname,omitempty"`
	QType  string        `json:"qtype,omitempty"`
	Detail string        `json:"detail,omitempty"`
}

// AdversaryLog is a decision log read by ReadAdversaryLog, for
// CompareOptions.Adversary. Compare does not change it.
type AdversaryLog struct {
	File      string // the name errors and the report give it
	Decisions []AdversaryDecision
	// byClient lists, per client endpoint, the decisions about it in the
	// order of their times.
	byClient map[advKey][]int
}

// advKey is what a decision and a flow both know of the client: its
// layer-4 protocol and address.
type advKey struct {
	proto  string
	client netip.AddrPort
}

func newAdvKey(proto string, client netip.AddrPort) advKey {
	return advKey{proto, netip.AddrPortFrom(client.Addr().Unmap(), client.Port())}
}

// ErrAdversaryLog reports a bad line in an adversary decision log.
var ErrAdversaryLog = errors.New("lab: bad adversary log")

// AdversaryLogError names the file and line of a bad decision.
type AdversaryLogError struct {
	File string
	Line int
	Err  error
}

func (e *AdversaryLogError) Error() string {
	return fmt.Sprintf("%v: %s line %d: %v", ErrAdversaryLog, e.File, e.Line, e.Err)
}

// Unwrap gives ErrAdversaryLog and the cause.
func (e *AdversaryLogError) Unwrap() []error { return []error{ErrAdversaryLog, e.Err} }

// ReadAdversaryLog reads an adversary decision log: JSON lines, one
// decision each (see AdversaryDecision); blank lines are skipped. file
// names the log in errors. A line that is not a JSON object, has an
// unknown action, a proto other than tcp or udp, or no client address is
// an *AdversaryLogError.
func ReadAdversaryLog(r io.Reader, file string) (*AdversaryLog, error) {
	l := &AdversaryLog{File: file, byClient: map[advKey][]int{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var d AdversaryDecision
		if err := json.Unmarshal(line, &d); err != nil {
			return nil, &AdversaryLogError{file, n, err}
		}
		if err := d.check(); err != nil {
			return nil, &AdversaryLogError{file, n, err}
		}
		d.Line = n
		k := newAdvKey(d.Flow.Proto, d.Flow.Client)
		l.byClient[k] = append(l.byClient[k], len(l.Decisions))
		l.Decisions = append(l.Decisions, d)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("lab: reading adversary log %s: %w", file, err)
	}
	for _, idx := range l.byClient {
		slices.SortStableFunc(idx, func(a, b int) int { return l.Decisions[a].Time.Compare(l.Decisions[b].Time) })
	}
	return l, nil
}

// check validates a decision read from a log.
func (d *AdversaryDecision) check() error {
	if _, ok := adversaryRank[d.Action]; !ok {
		return fmt.Errorf("action %q: want pass, drop, rst, rst-after-reply or rewrite", d.Action)
	}
	if d.Flow.Proto != ProtoTCP && d.Flow.Proto != ProtoUDP {
		return fmt.Errorf("flow.proto %q: want tcp or udp", d.Flow.Proto)
	}
	if !d.Flow.Client.IsValid() {
		return errors.New("flow.client: no client address")
	}
	return nil
}
