package capture

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"
)

// Sentinel errors of the capture readers and writers.
var (
	// ErrNotCapture means the input is neither pcap nor pcapng.
	ErrNotCapture = errors.New("lab: not a pcap or pcapng capture")
	// ErrTruncated means the capture ends inside its file header.
	ErrTruncated = errors.New("lab: capture truncated")
	// ErrMalformed means the capture's block structure is broken.
	ErrMalformed = errors.New("lab: malformed capture")
)

// CaptureError names where in a capture file reading failed.
type CaptureError struct {
	Format string // "pcap" or "pcapng"
	Offset int64  // byte offset of the bad header or block
	Field  string // e.g. "block_total_length"
	Err    error  // ErrTruncated or ErrMalformed
}

func (e *CaptureError) Error() string {
	return fmt.Sprintf("lab: %s at offset %d: %s: %v", e.Format, e.Offset, e.Field, e.Err)
}

// Unwrap returns the sentinel error.
func (e *CaptureError) Unwrap() error { return e.Err }

// SynthComment is the section header comment of captures a Recorder wrote.
const SynthComment = "echlab synthesized capture"

// maxPacket bounds the bytes of a single captured packet we accept.
const maxPacket = 256 << 10

// Packet is one decoded IP packet carrying TCP or UDP.
type Packet struct {
	TS       time.Time
	Src, Dst netip.AddrPort
	Proto    uint8 // 6 TCP, 17 UDP
	Seq, Ack uint32
	Flags    uint8 // TCP flags
	Payload  []byte
}

// TCP flag bits.
const (
	TCPFIN = 0x01
	TCPSYN = 0x02
	TCPRST = 0x04
	TCPACK = 0x10
)

// Meta is what Read learns about the capture file itself.
type Meta struct {
	Format      string
	Comment     string
	Packets     int
	Undecodable int
	Warnings    []string
}

// Read reads a pcap or pcapng from r, one packet at a time, and calls fn
// for every IPv4/IPv6 TCP or UDP packet: memory does not grow with the
// file. p and p.Payload are only valid during the call: both are reused for
// the next packet (fn copies what it keeps).
// A file cut short inside a packet is a warning; a bad file header, or a
// block or record whose structure is broken anywhere in the file, is an
// error (fn may have seen the packets before it).
func Read(r io.Reader, fn func(*Packet)) (*Meta, error) {
	meta := &Meta{}
	in := &readErr{r: r}
	src, err := openCapture(in, meta)
	if in.err != nil {
		return nil, fmt.Errorf("lab: reading capture: %w", in.err)
	}
	if err != nil {
		return nil, err
	}
	var p Packet
	var rec record
	for {
		err := src.next(&rec)
		if in.err != nil {
			return nil, fmt.Errorf("lab: reading capture: %w", in.err)
		}
		if err == io.EOF {
			break
		}
		if err == io.ErrUnexpectedEOF {
			meta.Warnings = append(meta.Warnings, fmt.Sprintf("capture cut short after %d packets: %v", meta.Packets, err))
			break
		}
		if err != nil {
			return nil, err
		}
		meta.Packets++
		if !decodeLink(&p, rec.link, rec.data) {
			meta.Undecodable++
			continue
		}
		p.TS = rec.ts
		fn(&p)
	}
	if ng, ok := src.(*ngReader); ok && ng.blocks.trailing > 0 {
		meta.Warnings = append([]string{fmt.Sprintf("pcapng cut short: %d trailing bytes of a partial block ignored", ng.blocks.trailing)}, meta.Warnings...)
	}
	if meta.Undecodable > 0 {
		meta.Warnings = append(meta.Warnings, fmt.Sprintf("%d of %d packets were not IPv4/IPv6 TCP or UDP (or were fragments) and were skipped", meta.Undecodable, meta.Packets))
	}
	return meta, nil
}

// readErr remembers the first error of r other than io.EOF: a capture
// whose reading fails is an error, not a capture cut short.
type readErr struct {
	r   io.Reader
	err error
}

func (e *readErr) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}
