package intercept

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Start gives cfg.Observer a Dialer that marks the relays' sockets with
// cfg.Mark, starts one relay per target on it, and installs the nftables
// table that sends the namespace's traffic to the targets through them.
// It needs CAP_NET_ADMIN (the rules, and SO_MARK). On error nothing stays
// installed and the Observer is closed.
func Start(cfg Config) (*Intercept, error) {
	if err := cfg.populate(); err != nil {
		return nil, err
	}
	cfg.Observer.Dialer = markingDialer(cfg.Observer.Dialer, cfg.Mark)
	i := &Intercept{cfg: cfg, relays: map[Target]netip.AddrPort{},
		unrule: func() error { return deleteTable(cfg.Table) }}
	if err := i.startRelays(); err != nil {
		return nil, errors.Join(err, cfg.Observer.Close())
	}
	if err := installTable(cfg, i.relays); err != nil {
		return nil, errors.Join(err, deleteTable(cfg.Table), cfg.Observer.Close())
	}
	return i, nil
}

// markingDialer returns a copy of d (or a Dialer with a 5 s timeout when
// d is nil) that sets mark on every socket it dials, after d's own
// Control or ControlContext.
func markingDialer(d *net.Dialer, mark uint32) *net.Dialer {
	m := &net.Dialer{Timeout: 5 * time.Second}
	if d != nil {
		*m = *d
	}
	setMark := func(rc syscall.RawConn) error {
		var err error
		if cerr := rc.Control(func(fd uintptr) {
			err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, int(mark))
		}); cerr != nil {
			return cerr
		}
		if err != nil {
			return fmt.Errorf("intercept: marking a relay's socket: %w", err)
		}
		return nil
	}
	if cc := m.ControlContext; cc != nil {
		m.ControlContext = func(ctx context.Context, network, address string, rc syscall.RawConn) error {
			if err := cc(ctx, network, address, rc); err != nil {
				return err
			}
			return setMark(rc)
		}
		return m
	}
	c := m.Control
	m.Control = func(network, address string, rc syscall.RawConn) error {
		if c != nil {
			if err := c(network, address, rc); err != nil {
				return err
			}
		}
		return setMark(rc)
	}
	return m
}

// startRelays opens one relay per target, in front of the target itself.
func (i *Intercept) startRelays() error {
	for _, t := range i.cfg.Targets {
		start := i.cfg.Observer.RelayTCP
		if t.Proto == "udp" {
			start = i.cfg.Observer.RelayUDP
		}
		addr, err := start(t.Role, t.Dest.String())
		if err != nil {
			return fmt.Errorf("intercept: relay for %s: %w", t, err)
		}
		ap, err := netip.ParseAddrPort(addr)
		if err != nil {
			return fmt.Errorf("intercept: relay for %s at %q: %w", t, addr, err)
		}
		i.relays[t] = ap
	}
	return nil
}

// installTable replaces the table with one nat output chain holding one
// rule per target: the target's new flows from sockets not marked cfg.Mark are
// sent to the relay.
func installTable(cfg Config, relays map[Target]netip.AddrPort) error {
	if err := deleteTable(cfg.Table); err != nil {
		return err
	}
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("intercept: nftables: %w", err)
	}
	table := c.AddTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: cfg.Table})
	chain := c.AddChain(&nftables.Chain{Name: "output", Table: table, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityNATDest})
	for _, t := range cfg.Targets {
		c.AddRule(&nftables.Rule{Table: table, Chain: chain, Exprs: redirect(t, relays[t], cfg.Mark)})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("intercept: installing nftables table %s: %w", cfg.Table, err)
	}
	return nil
}

// redirect is one rule: "meta l4proto P ip daddr D P dport N meta mark
// != MARK dnat to RELAY".
func redirect(t Target, relay netip.AddrPort, mark uint32) []expr.Any {
	proto := byte(unix.IPPROTO_TCP)
	if t.Proto == "udp" {
		proto = unix.IPPROTO_UDP
	}
	dst, to := t.Dest.Addr().As4(), relay.Addr().As4()
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: dst[:]},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(t.Dest.Port())},
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(mark)},
		&expr.Immediate{Register: 1, Data: to[:]},
		&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(relay.Port())},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
	}
}

// deleteTable removes the table if it exists.
func deleteTable(name string) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("intercept: nftables: %w", err)
	}
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return fmt.Errorf("intercept: listing nftables tables: %w", err)
	}
	for _, t := range tables {
		if t.Name == name {
			c.DelTable(t)
			if err := c.Flush(); err != nil {
				return fmt.Errorf("intercept: deleting nftables table %s: %w", name, err)
			}
		}
	}
	return nil
}

// Installed reports whether the table is installed in the process's
// network namespace (for the CLI and tests: Close must leave none).
func Installed(table string) (bool, error) {
	c, err := nftables.New()
	if err != nil {
		return false, fmt.Errorf("intercept: nftables: %w", err)
	}
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return false, fmt.Errorf("intercept: listing nftables tables: %w", err)
	}
	for _, t := range tables {
		if t.Name == table {
			return true, nil
		}
	}
	return false, nil
}
