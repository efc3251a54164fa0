package resolver

import (
	"errors"
	"fmt"
	"sync"

	"github.com/miekg/dns"
)

// Block lengths of the RFC 8467 block-length padding policy (section 4.1):
// a client pads queries to a multiple of 128 octets, a server pads
// responses to a multiple of 468 octets.
const (
	queryPadBlock    = 128
	responsePadBlock = 468
)

// maxMessage is the largest DNS message a stream transport can carry.
const maxMessage = 65535

// errPadding is returned when a message cannot be padded.
var errPadding = errors.New("resolver: cannot pad message")

// hasPadding reports whether m carries an EDNS(0) Padding option (RFC 7830).
func hasPadding(m *dns.Msg) bool {
	opt := m.IsEdns0()
	if opt == nil {
		return false
	}
	for _, o := range opt.Option {
		if o.Option() == dns.EDNS0PADDING {
			return true
		}
	}
	return false
}

// padQuery pads a query for an encrypted transport to a multiple of
// queryPadBlock octets, adding an OPT record (UDP size 1232) if m has none.
func padQuery(m *dns.Msg) error {
	if m.IsEdns0() == nil {
		m.SetEdns0(1232, false)
	}
	return padTo(m, queryPadBlock)
}

// padResponse applies the responder side of RFC 7830/8467 on encrypted
// transports: when req carried a Padding option, resp is padded to a
// multiple of responsePadBlock octets (an OPT record is added if the
// handler left it out); otherwise any Padding option is removed from resp,
// since a responder pads only when asked to. A response that would grow
// past 65535 octets is left unpadded.
func padResponse(req, resp *dns.Msg) error {
	if req == nil || !hasPadding(req) {
		removePadding(resp)
		return nil
	}
	if resp.IsEdns0() == nil {
		size := uint16(dns.MinMsgSize)
		if o := req.IsEdns0(); o != nil && o.UDPSize() > size {
			size = o.UDPSize()
		}
		resp.SetEdns0(size, false)
	}
	err := padTo(resp, responsePadBlock)
	if errors.Is(err, errPadding) {
		removePadding(resp)
		return nil
	}
	return err
}

// padTo replaces any Padding option in m by one that makes the packed
// message a multiple of block octets. m must already carry an OPT record.
func padTo(m *dns.Msg, block int) error {
	if block <= 0 {
		return fmt.Errorf("%w: block size %d", errPadding, block)
	}
	opt := removePadding(m)
	if opt == nil {
		return fmt.Errorf("%w: no OPT record", errPadding)
	}
	bp := getPackBuffer()
	defer putPackBuffer(bp)
	b, err := m.PackBuffer(*bp)
	if err != nil {
		return fmt.Errorf("resolver: packing message to pad: %w", err)
	}
	*bp = b
	n := len(b) + 4 // the option header: code and length
	pad := (block - n%block) % block
	if n+pad > maxMessage {
		return fmt.Errorf("%w: %d octets padded past %d", errPadding, n, maxMessage)
	}
	opt.Option = append(opt.Option, &dns.EDNS0_PADDING{Padding: make([]byte, pad)})
	return nil
}

// removePadding drops every Padding option from m and returns its OPT
// record, or nil when m has none.
func removePadding(m *dns.Msg) *dns.OPT {
	opt := m.IsEdns0()
	if opt == nil {
		return nil
	}
	first := -1
	for i, o := range opt.Option {
		if o.Option() == dns.EDNS0PADDING {
			first = i
			break
		}
	}
	if first < 0 { // nothing to drop: no copy
		return opt
	}
	kept := append(make([]dns.EDNS0, 0, len(opt.Option)-1), opt.Option[:first]...)
	for _, o := range opt.Option[first+1:] {
		if o.Option() != dns.EDNS0PADDING {
			kept = append(kept, o)
		}
	}
	opt.Option = kept
	return opt
}

// packBuffers recycles the buffers responses are packed into: a DoH
// response is copied out by the ResponseWriter before its buffer returns.
var packBuffers = sync.Pool{New: func() any {
	b := make([]byte, 0, 512)
	return &b
}}

// maxPooledBuffer is the largest buffer put back in packBuffers: one
// that grew for a rare large answer is left to the garbage collector.
const maxPooledBuffer = 4096

// getPackBuffer returns an empty buffer to pack a message into, with
// room for a typical answer; miekg/dns packs into it when it is long
// enough (PackBuffer uses its full capacity).
func getPackBuffer() *[]byte {
	bp := packBuffers.Get().(*[]byte)
	*bp = (*bp)[:cap(*bp)]
	return bp
}

// putPackBuffer returns a buffer from getPackBuffer to the pool.
func putPackBuffer(bp *[]byte) {
	if cap(*bp) <= maxPooledBuffer {
		packBuffers.Put(bp)
	}
}
