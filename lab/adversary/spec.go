package adversary

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/echlab/echlab/lab/capture"
)

// Kind names a policy.
type Kind string

// The policy kinds (see the package documentation for what each does).
const (
	BlockSNI       Kind = "block-sni"
	BlockECH       Kind = "block-ech"
	BlockECHPublic Kind = "block-ech-public"
	BlockECHSize   Kind = "block-ech-size"
	StripECH       Kind = "strip-ech"
	DropHTTPSRR    Kind = "drop-https-rr"
	Poison         Kind = "poison"
	BlockDoH       Kind = "block-doh"
	DropUDP        Kind = "drop-udp"
	RstAfterHello  Kind = "rst-after-hello"
)

// GreaseSizes are the ECH payload lengths block-ech-size passes by
// default: the lengths BoringSSL (and so Chrome) gives its GREASE ECH
// payloads.
var GreaseSizes = []int{144, 176, 208, 240}

// HTTPSPort is drop-udp's default port. It stands for the lab's HTTPS
// services (relays whose Role starts with "https/") wherever they listen.
const HTTPSPort = 443

// DefaultGrid is the grid "all" (alias "censor") expands to, and the
// default of echlab run --adversary: every policy kind at least once, in
// canonical form, aimed at the embedded lab's names (secret.lab.test
// behind ECH, public.lab.test its public name and the HTTPS record's
// TargetName). poison points that name at a loopback address nothing
// listens on, so a poisoned connection is refused on the machine.
var DefaultGrid = []string{
	"block-sni secret.lab.test",
	"block-sni public.lab.test rst",
	"block-ech",
	"block-ech-public public.lab.test",
	"block-ech-size",
	"rst-after-hello",
	"strip-ech",
	"drop-https-rr",
	"poison public.lab.test 127.0.0.66",
	"block-doh",
	"strip-ech+block-doh",
	"drop-udp",
}

// Policy is one parsed policy. Parse fills it in canonical form (names in
// lower case without a trailing dot, defaults made explicit); String gives
// back the shortest spec that parses to it.
type Policy struct {
	Kind Kind
	// Name is the name block-sni, block-ech-public and poison act on, and
	// the SNI block-doh blocks ("" when not given). "*.suffix" matches
	// every name under suffix (not suffix itself).
	Name string
	// Addr is the address poison answers with, and the address block-doh
	// blocks (the zero Addr when not given).
	Addr netip.Addr
	// Port is block-doh's port with Addr (0: any port) and drop-udp's port
	// (HTTPSPort: the lab's HTTPS services wherever they listen).
	Port uint16
	// Sizes are the ECH payload lengths block-ech-size passes as GREASE,
	// sorted.
	Sizes []int
	// Verdict is what the block-* policies do to a matching connection:
	// capture.Drop or capture.Reset.
	Verdict capture.Verdict
}

// kindRule says how a kind's arguments read: how many positional
// arguments it takes, whether a trailing "drop"/"rst" may follow (and
// which is the default), and how the positional ones fill the policy.
type kindRule struct {
	usage   string
	args    []string        // the positional arguments' names
	min     int             // how many of them are required
	verdict capture.Verdict // default action; Pass: the kind takes none
	fill    func(p *Policy, args []string) (reason string)
}

var rules = map[Kind]kindRule{
	BlockSNI:       {"block-sni NAME [drop|rst]", []string{"NAME"}, 1, capture.Drop, fillName},
	BlockECH:       {"block-ech [drop|rst]", nil, 0, capture.Drop, nil},
	BlockECHPublic: {"block-ech-public NAME [drop|rst]", []string{"NAME"}, 1, capture.Drop, fillName},
	BlockECHSize:   {"block-ech-size [SIZE,…] [drop|rst]", []string{"SIZES"}, 0, capture.Drop, fillSizes},
	StripECH:       {"strip-ech", nil, 0, capture.Pass, nil},
	DropHTTPSRR:    {"drop-https-rr", nil, 0, capture.Pass, nil},
	Poison:         {"poison NAME ADDR", []string{"NAME", "ADDR"}, 2, capture.Pass, fillPoison},
	BlockDoH:       {"block-doh [ADDR|IP:PORT|NAME] [drop|rst]", []string{"ADDR|NAME"}, 0, capture.Reset, fillDoHTarget},
	DropUDP:        {"drop-udp [PORT]", []string{"PORT"}, 0, capture.Pass, fillPort},
	RstAfterHello:  {"rst-after-hello", nil, 0, capture.Pass, nil},
}

// kindNames lists the kinds in DefaultGrid order, for error messages.
var kindNames = []Kind{BlockSNI, BlockECH, BlockECHPublic, BlockECHSize, StripECH,
	DropHTTPSRR, Poison, BlockDoH, DropUDP, RstAfterHello}

// Parse reads one column of policies: one or more policies joined by "+",
// each "KIND [ARG…]" with space-separated arguments, e.g.
// "block-sni secret.lab.test rst" or "strip-ech+block-doh". "none" is the
// control column and gives no policy. Errors are *SpecError.
func Parse(spec string) ([]Policy, error) {
	s := strings.TrimSpace(spec)
	switch strings.ToLower(s) {
	case "":
		return nil, &SpecError{Spec: spec, Reason: "empty column (use none for no policy)", Err: ErrEmpty}
	case "none":
		return nil, nil
	}
	var out []Policy
	for part := range strings.SplitSeq(s, "+") {
		p, err := parseOne(spec, part)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// parseOne reads one "KIND [ARG…]" of column spec.
func parseOne(spec, part string) (Policy, error) {
	fields := strings.Fields(part)
	fail := func(err error, reason string) (Policy, error) {
		return Policy{}, &SpecError{Spec: spec, Policy: strings.TrimSpace(part), Reason: reason, Err: err}
	}
	if len(fields) == 0 {
		return fail(ErrEmpty, "empty policy between '+' signs")
	}
	kind := Kind(strings.ToLower(fields[0]))
	r, ok := rules[kind]
	switch {
	case kind == "none" || kind == "all" || kind == "censor":
		return fail(ErrUnknownKind, string(kind)+" is a whole column and cannot be combined with '+' or take arguments")
	case !ok:
		return fail(ErrUnknownKind, "unknown kind "+strconv.Quote(fields[0])+" (known: "+knownKinds()+")")
	}
	p := Policy{Kind: kind, Verdict: r.verdict}
	args := fields[1:]
	if r.verdict != capture.Pass && len(args) > 0 {
		if v, ok := parseVerdict(args[len(args)-1]); ok {
			p.Verdict, args = v, args[:len(args)-1]
		}
	}
	if len(args) < r.min {
		return fail(ErrArgCount, "missing argument "+r.args[len(args)]+" (usage: "+r.usage+")")
	}
	if len(args) > len(r.args) {
		return fail(ErrArgCount, "extra argument "+strconv.Quote(args[len(r.args)])+" (usage: "+r.usage+")")
	}
	if r.fill != nil {
		if reason := r.fill(&p, args); reason != "" {
			return fail(ErrBadArg, reason+" (usage: "+r.usage+")")
		}
	}
	return p, nil
}

func knownKinds() string {
	s := make([]string, len(kindNames))
	for i, k := range kindNames {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

// ParseGrid reads a comma-separated list of columns, each one Parse
// reads; "all" (alias "censor") expands to DefaultGrid. A comma followed
// by a digit continues block-ech-size's SIZES list rather than starting a
// column (no column starts with a digit), so
// "none,block-ech-size 144,176 rst" is two columns.
func ParseGrid(spec string) ([][]Policy, error) {
	cols := splitColumns(spec)
	var out [][]Policy
	for i, col := range cols {
		c := strings.TrimSpace(col)
		switch strings.ToLower(c) {
		case "":
			return nil, &SpecError{Spec: spec, Reason: "column " + strconv.Itoa(i+1) + " is empty", Err: ErrEmpty}
		case "all", "censor":
			for _, d := range DefaultGrid {
				ps, err := Parse(d)
				if err != nil {
					return nil, err
				}
				out = append(out, ps)
			}
			continue
		}
		ps, err := Parse(c)
		if err != nil {
			return nil, err
		}
		out = append(out, ps)
	}
	return out, nil
}

// splitColumns splits spec at the commas that start a column.
func splitColumns(spec string) []string {
	var cols []string
	for piece := range strings.SplitSeq(spec, ",") {
		t := strings.TrimSpace(piece)
		if len(cols) > 0 && t != "" && t[0] >= '0' && t[0] <= '9' {
			cols[len(cols)-1] += "," + t
			continue
		}
		cols = append(cols, piece)
	}
	return cols
}

// String returns the canonical spec of p: its kind and the arguments that
// differ from the defaults. Parse(p.String()) gives p back.
func (p Policy) String() string {
	r := rules[p.Kind]
	args := []string{string(p.Kind)}
	switch p.Kind {
	case BlockSNI, BlockECHPublic:
		args = append(args, p.Name)
	case BlockECHSize:
		if !slices.Equal(p.Sizes, GreaseSizes) {
			args = append(args, joinInts(p.Sizes))
		}
	case Poison:
		args = append(args, p.Name, p.Addr.String())
	case BlockDoH:
		args = append(args, p.dohTarget()...)
	case DropUDP:
		if p.Port != HTTPSPort {
			args = append(args, strconv.Itoa(int(p.Port)))
		}
	}
	if r.verdict != capture.Pass && p.Verdict != r.verdict {
		args = append(args, p.Verdict.String())
	}
	return strings.Join(args, " ")
}

// dohTarget is block-doh's optional argument.
func (p Policy) dohTarget() []string {
	switch {
	case p.Name != "":
		return []string{p.Name}
	case p.Addr.IsValid() && p.Port != 0:
		return []string{netip.AddrPortFrom(p.Addr, p.Port).String()}
	case p.Addr.IsValid():
		return []string{p.Addr.String()}
	}
	return nil
}

// Join returns the canonical spec of a column: its policies' String()
// joined by "+", or "none" for no policy.
func Join(col []Policy) string {
	if len(col) == 0 {
		return "none"
	}
	s := make([]string, len(col))
	for i, p := range col {
		s[i] = p.String()
	}
	return strings.Join(s, "+")
}
