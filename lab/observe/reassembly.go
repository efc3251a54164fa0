package observe

import (
	"fmt"
	"sort"
	"time"

	"github.com/echlab/echlab/lab/capture"
)

// maxStream bounds how many bytes of each TCP direction are reassembled.
// The observer only needs the handshake (and DNS over TCP), so a long
// transfer is cut here rather than held in memory.
const maxStream = 1 << 20

// segment is one TCP payload as captured.
type segment struct {
	seq  uint32
	data []byte
	ts   time.Time
}

// tcpHalf collects one direction of a TCP connection: segments may arrive
// out of order, be retransmitted, or overlap.
type tcpHalf struct {
	isn     uint32 // sequence number of the SYN, when seen
	haveSYN bool
	fin     bool
	rst     bool
	segs    []segment
	bytes   int
}

// add records a segment. SYN fixes the initial sequence number; data past
// maxStream is dropped.
func (h *tcpHalf) add(p *capture.Packet) {
	if p.Flags&capture.TCPSYN != 0 && !h.haveSYN {
		h.isn, h.haveSYN = p.Seq, true
	}
	if p.Flags&capture.TCPFIN != 0 {
		h.fin = true
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
	h.segs = append(h.segs, segment{seq: seq, data: p.Payload, ts: p.TS})
	h.bytes += len(p.Payload)
}

// reassembled is one direction's byte stream.
type reassembled struct {
	data    []byte
	start   time.Time // capture time of the first byte
	gap     bool      // bytes are missing after data
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
	segs := make([]segment, len(h.segs))
	copy(segs, h.segs)
	sort.SliceStable(segs, func(i, j int) bool { return int32(segs[i].seq-base) < int32(segs[j].seq-base) })
	for _, s := range segs {
		off := int(int32(s.seq - base))
		end := off + len(s.data)
		if end <= len(out.data) {
			out.overlap += len(s.data)
			continue
		}
		if off > len(out.data) {
			out.gap = true
			out.warning = fmt.Sprintf("tcp: %d bytes missing at stream offset %d", off-len(out.data), len(out.data))
			break
		}
		if off < 0 {
			continue
		}
		if len(out.data) == 0 {
			out.start = s.ts
		}
		out.overlap += len(out.data) - off
		out.data = append(out.data, s.data[len(out.data)-off:]...)
		if len(out.data) >= maxStream {
			out.data = out.data[:maxStream]
			break
		}
	}
	return out
}
