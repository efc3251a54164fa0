package observe

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/echlab/echlab/lab/capture"
)

// maxStream bounds how far into each TCP direction the observer follows
// the sequence numbers: a hole within it is reported, bytes past it are not
// looked at.
const maxStream = 1 << 20

// maxKept bounds the bytes of each TCP direction held in memory: the
// observer reads only the plaintext handshake (and DNS over TCP, whose
// largest message with its length prefix fits), so the bytes of a long
// transfer past it are counted, not kept. With the early stop at the end of
// a TLS handshake (see tcpHalf.checkHandshakeDone), a capture's memory
// follows the connections open at a time, not the file's size.
const maxKept = 64<<10 + 2

// firstBuf is the room a direction's first kept segment makes for the
// bytes that follow it: most plaintext handshakes fit.
const firstBuf = 4 << 10

// maxFree bounds the buffers a bufFree holds.
const maxFree = 256

// bufFree hands the kept-bytes buffers of finished connections to new ones,
// so that a capture of many short connections allocates few. Nothing a
// flow keeps points into them: the hellos and DNS messages are copied out
// when they are parsed. A nil *bufFree allocates every buffer.
type bufFree struct{ bufs [][]byte }

// get returns an empty buffer with room for at least n bytes.
func (f *bufFree) get(n int) []byte {
	if f != nil && len(f.bufs) > 0 && n <= firstBuf {
		b := f.bufs[len(f.bufs)-1]
		f.bufs = f.bufs[:len(f.bufs)-1]
		return b
	}
	return make([]byte, 0, max(n, firstBuf))
}

// put takes back a buffer of a finished direction; larger ones (a DNS over
// TCP stream, a long handshake) are left to the collector.
func (f *bufFree) put(b []byte) {
	if f != nil && cap(b) == firstBuf && len(f.bufs) < maxFree {
		f.bufs = append(f.bufs, b[:0])
	}
}

// segment is one TCP payload as captured. Its bytes are tcpHalf.buf[off:off+n],
// or, with off < 0, it was only counted (past maxKept or the end of the
// handshake): n is its length either way.
type segment struct {
	seq uint32
	n   int
	off int
	ts  time.Time
}

// kept reports whether the segment's bytes are in its half's buf.
func (s segment) kept() bool { return s.off >= 0 }

// tcpHalf collects one direction of a TCP connection: segments may arrive
// out of order, be retransmitted, or overlap.
type tcpHalf struct {
	isn     uint32 // sequence number of the SYN, when seen
	haveSYN bool
	fin     bool
	finSeq  uint32 // sequence number of the FIN
	rst     bool
	segs    []segment
	buf     []byte // the kept segments' bytes, in the order they came
	bytes   int    // payload bytes recorded (kept or counted)
	kept    int    // payload bytes kept (len(buf))
	// inOrder: every segment so far began where the one before it ended,
	// the first at the stream's start: the kept bytes are buf itself, and
	// stream needs no sorting or copying.
	inOrder bool

	// handshakeDone: the kept stream holds the whole plaintext TLS
	// handshake the observer reads (a later record that is not handshake
	// or change_cipher_spec is complete), so later bytes are only counted.
	handshakeDone bool
	// notTLS: the stream does not start with a TLS handshake record (or
	// is DNS on port 53), so there is no early stop.
	notTLS bool
	free   *bufFree // where buf comes from
	// dns: DNS over TCP (port 53), whose every message the observer reads:
	// kept up to maxStream, not maxKept, so that a connection carrying
	// many queries loses none of their names.
	dns bool
}

// add records a segment. SYN fixes the initial sequence number; data past
// maxStream is dropped, data past maxKept or the handshake is counted.
func (h *tcpHalf) add(p *capture.Packet) {
	if p.Flags&capture.TCPSYN != 0 && !h.haveSYN {
		h.isn, h.haveSYN = p.Seq, true
	}
	if p.Flags&capture.TCPFIN != 0 && !h.fin {
		h.fin, h.finSeq = true, p.Seq+uint32(len(p.Payload))
	}
	if p.Flags&capture.TCPRST != 0 {
		h.rst = true
	}
	if len(p.Payload) == 0 || h.bytes >= maxStream {
		return
	}
	seq := p.Seq
	if p.Flags&capture.TCPSYN != 0 {
		seq++ // data on a SYN (TCP Fast Open) follows the SYN's sequence number
	}
	h.bytes += len(p.Payload)
	if h.handshakeDone || h.kept >= maxKept && !h.dns {
		// Counted only: merge with the previous counted segment when it
		// continues it, so that a long transfer is one entry.
		if n := len(h.segs); n > 0 && !h.segs[n-1].kept() && h.segs[n-1].seq+uint32(h.segs[n-1].n) == seq {
			h.segs[n-1].n += len(p.Payload)
			return
		}
		h.noteOrder(seq)
		h.segs = append(h.segs, segment{seq: seq, n: len(p.Payload), off: -1, ts: p.TS})
		return
	}
	h.noteOrder(seq)
	if h.segs == nil {
		h.segs = make([]segment, 0, 4)
	}
	h.segs = append(h.segs, segment{seq: seq, n: len(p.Payload), off: len(h.buf), ts: p.TS})
	if h.buf == nil {
		h.buf = h.free.get(len(p.Payload))
	}
	h.buf = append(h.buf, p.Payload...)
	h.kept += len(p.Payload)
	if h.haveSYN && !h.notTLS {
		h.checkHandshakeDone()
	}
}

// noteOrder keeps inOrder up to date before a segment at seq is appended.
func (h *tcpHalf) noteOrder(seq uint32) {
	if n := len(h.segs); n == 0 {
		h.inOrder = true
	} else if last := h.segs[n-1]; last.seq+uint32(last.n) != seq {
		h.inOrder = false
	}
}

// checkHandshakeDone looks at the kept stream (after a PROXY v2 header):
// a stream that does not start with a handshake record is notTLS; one that
// holds a complete record that is neither handshake nor change_cipher_spec
// (or a record header no TLS reader gets past) is handshakeDone. Everything
// tlsHellos reads lies before that point.
func (h *tcpHalf) checkHandshakeDone() {
	d := h.stream().data
	if n := proxyV2Len(d); n > 0 {
		d = d[n:]
	} else if len(d) < len(proxyV2Sig) && string(d) == proxyV2Sig[:len(d)] || len(d) >= len(proxyV2Sig) && string(d[:len(proxyV2Sig)]) == proxyV2Sig {
		return // (the start of) a PROXY header: wait for the rest
	}
	if len(d) == 0 {
		return
	}
	if d[0] != 22 {
		h.notTLS = true
		return
	}
	for off := 0; len(d)-off >= 5; {
		typ, length := d[off], int(d[off+3])<<8|int(d[off+4])
		if d[off+1] != 3 || length == 0 || length > 1<<14 {
			h.handshakeDone = true // HandshakeFromRecords stops at this header
			return
		}
		if len(d)-off-5 < length {
			return
		}
		if typ != 22 && typ != 20 {
			h.handshakeDone = true
			return
		}
		off += 5 + length
	}
}

// complete reports whether every byte the direction sent up to its FIN
// (or up to maxStream) is in without a hole, or it was reset: later
// packets cannot change what the observer reads.
func (h *tcpHalf) complete() bool {
	if h.rst {
		return true
	}
	if !h.fin || !h.haveSYN {
		return false
	}
	s := h.stream()
	return !s.gap && (s.length >= maxStream || uint32(s.length) == h.finSeq-(h.isn+1))
}

// reassembled is one direction's byte stream.
type reassembled struct {
	data    []byte    // the kept bytes from the start, without a hole
	length  int       // bytes from the start without a hole, kept or counted
	start   time.Time // capture time of the first byte
	gap     bool      // bytes are missing after length
	overlap int       // retransmitted or overlapping bytes dropped
	warning string
}

// stream reassembles the direction in sequence order. Overlapping bytes keep
// the first copy seen; a hole stops the stream (an observer cannot read on
// past it), which is reported.
func (h *tcpHalf) stream() reassembled {
	var out reassembled
	if len(h.segs) == 0 {
		return out
	}
	base := h.isn + 1
	if !h.haveSYN {
		base = h.segs[0].seq
		for _, s := range h.segs {
			if int32(s.seq-base) < 0 {
				base = s.seq
			}
		}
	}
	if h.inOrder && h.segs[0].seq == base {
		return h.orderedStream()
	}
	segs := make([]segment, len(h.segs))
	copy(segs, h.segs)
	slices.SortStableFunc(segs, func(a, b segment) int { return cmp.Compare(int32(a.seq-base), int32(b.seq-base)) })
	for _, s := range segs {
		off := int(int32(s.seq - base))
		end := off + s.n
		if end <= out.length {
			out.overlap += s.n
			continue
		}
		if off > out.length {
			out.gap = true
			out.warning = fmt.Sprintf("tcp: %d bytes missing at stream offset %d", off-out.length, out.length)
			break
		}
		if off < 0 {
			continue
		}
		if out.length == 0 {
			out.start = s.ts
		}
		out.overlap += out.length - off
		if s.kept() && len(out.data) == out.length {
			out.data = append(out.data, h.buf[s.off+out.length-off:s.off+s.n]...)
		}
		out.length = end
		if out.length >= maxStream {
			out.length = maxStream
			if len(out.data) > maxStream {
				out.data = out.data[:maxStream]
			}
			break
		}
	}
	return out
}

// orderedStream is stream for segments that follow one another from the
// stream's start (inOrder): no hole, no overlap, and the kept bytes are the
// leading kept segments, which lie at the start of buf. The result's data
// shares buf (capped, so that an append to it copies).
func (h *tcpHalf) orderedStream() reassembled {
	out := reassembled{start: h.segs[0].ts}
	for _, s := range h.segs {
		if !s.kept() {
			break
		}
		out.length += s.n
	}
	out.data = h.buf[:out.length:out.length]
	out.length = h.bytes
	if out.length >= maxStream {
		out.length = maxStream
		if len(out.data) > maxStream {
			out.data = out.data[:maxStream:maxStream]
		}
	}
	return out
}
