package intercept

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/echlab/echlab/lab/capture"
)

// DefaultTable is the nftables table (family ip) Start installs when
// Config.Table is empty.
const DefaultTable = "echlab_intercept"

// DefaultMark is the socket mark (SO_MARK) of the relays' sockets to their
// destinations when Config.Mark is zero: the rules skip packets with this
// mark, so the client's sockets must not carry it.
const DefaultMark = 0x4713

// ErrTarget means a target spec or a Target is malformed.
var ErrTarget = errors.New("intercept: bad target")

// Target is one destination whose traffic is intercepted: the namespace's
// connections (Proto "tcp") or datagrams (Proto "udp") to Dest go through
// a relay of this Role instead.
type Target struct {
	Role  capture.Role
	Proto string         // "tcp" or "udp"
	Dest  netip.AddrPort // an IPv4 address and a port
}

// String gives the target back in ParseTargets' form.
func (t Target) String() string { return fmt.Sprintf("%s=%s/%s", t.Role, t.Proto, t.Dest) }

// check reports why t cannot be intercepted, or nil.
func (t Target) check() error {
	switch {
	case t.Role == "":
		return fmt.Errorf("%w %s: no role", ErrTarget, t)
	case t.Proto != "tcp" && t.Proto != "udp":
		return fmt.Errorf("%w %s: protocol %q is not tcp or udp", ErrTarget, t, t.Proto)
	case !t.Dest.IsValid() || !t.Dest.Addr().Is4() || t.Dest.Port() == 0:
		return fmt.Errorf("%w %s: the destination must be an IPv4 address and a port", ErrTarget, t)
	}
	return nil
}

// ParseTargets reads targets from specs of the form ROLE=PROTO/ADDR:PORT,
// PROTO being tcp, udp or tcp+udp (one Target each), e.g.
// "dns/do53=tcp+udp/10.203.1.53:53" or "https/shared=tcp/10.203.1.10:443".
// Each spec may also hold several, comma-separated.
func ParseTargets(specs ...string) ([]Target, error) {
	var out []Target
	for _, list := range specs {
		for spec := range strings.SplitSeq(list, ",") {
			spec = strings.TrimSpace(spec)
			if spec == "" {
				continue
			}
			ts, err := parseTarget(spec)
			if err != nil {
				return nil, err
			}
			out = append(out, ts...)
		}
	}
	return out, nil
}

func parseTarget(spec string) ([]Target, error) {
	role, rest, ok := strings.Cut(spec, "=")
	protos, dest, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 {
		return nil, fmt.Errorf("%w %q: want ROLE=PROTO/ADDR:PORT", ErrTarget, spec)
	}
	ap, err := netip.ParseAddrPort(dest)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrTarget, spec, err)
	}
	var out []Target
	for p := range strings.SplitSeq(protos, "+") {
		t := Target{Role: capture.Role(role), Proto: p, Dest: ap}
		if err := t.check(); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// Config says what Start intercepts and how.
type Config struct {
	// Observer runs the relays (its Filter is the adversary; its
	// WrapConn/WrapPacketConn record). Required; Close closes it.
	Observer *capture.Observer
	// Targets are the destinations to intercept, each at most once.
	Targets []Target
	// Mark is the socket mark (SO_MARK) Start gives the relays'
	// sockets to the real destinations, through Observer.Dialer (an
	// Observer's own Dialer keeps its settings; Start adds the mark); the
	// rules skip packets with this mark. Zero means DefaultMark.
	Mark uint32
	// Table is the nftables table (family ip); empty means DefaultTable.
	Table string
}

// populate fills the defaults and checks the rest.
func (c *Config) populate() error {
	if c.Observer == nil {
		return errors.New("intercept: no Observer")
	}
	if len(c.Targets) == 0 {
		return fmt.Errorf("%w: no targets", ErrTarget)
	}
	seen := map[Target]bool{}
	for _, t := range c.Targets {
		if err := t.check(); err != nil {
			return err
		}
		k := Target{Proto: t.Proto, Dest: t.Dest}
		if seen[k] {
			return fmt.Errorf("%w %s: %s/%s intercepted twice", ErrTarget, t, t.Proto, t.Dest)
		}
		seen[k] = true
	}
	if c.Mark == 0 {
		c.Mark = DefaultMark
	}
	if c.Table == "" {
		c.Table = DefaultTable
	}
	return nil
}

// Intercept is a running interception: its rules are installed and its
// relays run until Close.
type Intercept struct {
	cfg    Config
	relays map[Target]netip.AddrPort
	unrule func() error // deletes the table
}

// Relay returns the relay's 127.0.0.1 address for target t (the zero
// AddrPort when t is not intercepted).
func (i *Intercept) Relay(t Target) netip.AddrPort { return i.relays[t] }

// Close deletes the rules, then closes the Observer (every relay and
// connection). It reports the errors of both steps; the second runs
// whatever the first gave.
func (i *Intercept) Close() error {
	err := i.unrule()
	return errors.Join(err, i.cfg.Observer.Close())
}
