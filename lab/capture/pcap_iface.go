package capture

import (
	"math/bits"
	"time"
)

// ngIface is what a pcapng interface description block says about the
// packets of its interface.
type ngIface struct {
	link    LinkType
	snaplen uint32 // 0: no limit
	// tsresol is if_tsresol as stored (6, microseconds, when absent): 10^-n
	// seconds, or 2^-n with the top bit set.
	tsresol uint8
	offset  int64  // if_tsoffset, seconds added to every timestamp
	perSec  uint64 // timestamp units per second
	nsPer   uint64 // nanoseconds per unit when that is whole, else 0
}

// iface reads an interface description block.
func (r *ngReader) iface(blk []byte) error {
	order := r.blocks.order
	if len(blk) < 20 {
		return r.bad(4, "interface description block length")
	}
	if len(r.ifaces) >= maxInterfaces {
		return r.bad(0, "interface description block count")
	}
	i := ngIface{link: LinkType(order.Uint16(blk[8:])), snaplen: order.Uint32(blk[12:]), tsresol: 6}
	err := r.options(blk, 16, func(code uint16, v []byte) string {
		switch code {
		case 9: // if_tsresol
			if len(v) < 1 || v[0]&0x80 != 0 && v[0]&0x7f > 63 || v[0]&0x80 == 0 && v[0] > 19 {
				return "if_tsresol"
			}
			i.tsresol = v[0]
		case 11: // if_filter: a type byte, then the filter
			if len(v) < 1 {
				return "if_filter"
			}
		case 14: // if_tsoffset
			if len(v) < 8 {
				return "if_tsoffset"
			}
			i.offset = int64(order.Uint64(v))
		}
		return ""
	})
	if err != nil {
		return err
	}
	i.setResolution()
	r.ifaces = append(r.ifaces, i)
	return nil
}

// setResolution derives the units per second from tsresol.
func (i *ngIface) setResolution() {
	exp := uint64(i.tsresol & 0x7f)
	if i.tsresol&0x80 != 0 {
		i.perSec = 1 << exp
	} else {
		i.perSec = 1
		for range exp {
			i.perSec *= 10
		}
	}
	i.nsPer = 0
	if i.perSec <= 1e9 && 1e9%i.perSec == 0 {
		i.nsPer = 1e9 / i.perSec
	}
}

// time converts a timestamp of the interface's units, rounding down to a
// nanosecond.
func (i *ngIface) time(ticks uint64) time.Time {
	sec, frac := ticks/i.perSec, ticks%i.perSec
	var ns uint64
	if i.nsPer != 0 {
		ns = frac * i.nsPer
	} else {
		// frac < perSec, so the high word is below perSec: no overflow.
		hi, lo := bits.Mul64(frac, 1e9)
		ns, _ = bits.Div64(hi, lo, i.perSec)
	}
	return time.Unix(int64(sec)+i.offset, int64(ns)).UTC()
}
