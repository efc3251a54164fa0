package capture

import (
	"bufio"
	"encoding/binary"
	"io"
	"time"
)

// ngSection is what the writer puts in the section header's options.
type ngSection struct {
	Hardware, OS, Application, Comment string
}

// ngInterfaceDesc is what the writer puts in the interface description
// block. Timestamps are always in nanoseconds (if_tsresol 9).
type ngInterfaceDesc struct {
	Name, Description, OS string
	Filter                string // a libpcap filter expression, or ""
	Link                  LinkType
	SnapLen               uint32
}

// ngWriter writes a little-endian pcapng of one section and one interface,
// whose packets are enhanced packet blocks with nanosecond timestamps, as
// gopacket's pcapgo.NgWriter writes them (the same bytes). It buffers:
// Flush before the file is closed.
type ngWriter struct {
	w   *bufio.Writer
	buf []byte
}

// ngOpt is one option to write: its code and value (strings as is).
type ngOpt struct {
	code  uint16
	value []byte
}

// newNgWriter writes the section header and the interface description.
func newNgWriter(w io.Writer, sec ngSection, intf ngInterfaceDesc) (*ngWriter, error) {
	nw := &ngWriter{w: bufio.NewWriter(w)}
	var opts []ngOpt
	opts = appendOpt(opts, 4, sec.Application) // shb_userappl
	opts = appendOpt(opts, 1, sec.Comment)     // opt_comment
	opts = appendOpt(opts, 2, sec.Hardware)    // shb_hardware
	opts = appendOpt(opts, 3, sec.OS)          // shb_os
	le := binary.LittleEndian
	b := le.AppendUint32(nil, 0x1A2B3C4D)      // byte-order magic
	b = le.AppendUint16(b, 1)                  // major version
	b = le.AppendUint16(b, 0)                  // minor version
	b = le.AppendUint64(b, 0xFFFFFFFFFFFFFFFF) // section length: not given
	nw.block(pcapngSHB, b, opts)

	opts = opts[:0]
	opts = appendOpt(opts, 2, intf.Name)        // if_name
	opts = appendOpt(opts, 3, intf.Description) // if_description
	if intf.Filter != "" {
		opts = append(opts, ngOpt{11, append([]byte{0}, intf.Filter...)}) // if_filter, type 0: libpcap
	}
	opts = appendOpt(opts, 12, intf.OS)      // if_os
	opts = append(opts, ngOpt{9, []byte{9}}) // if_tsresol: nanoseconds
	b = le.AppendUint16(b[:0], uint16(intf.Link))
	b = le.AppendUint16(b, 0) // reserved
	b = le.AppendUint32(b, intf.SnapLen)
	nw.block(pcapngIDB, b, opts)
	if _, err := nw.w.Write(nw.buf); err != nil {
		return nil, err
	}
	return nw, nil
}

// appendOpt appends a string option unless it is empty.
func appendOpt(opts []ngOpt, code uint16, v string) []ngOpt {
	if v == "" {
		return opts
	}
	return append(opts, ngOpt{code, []byte(v)})
}

// block appends a block of type typ with the fixed fields body and the
// options opts (ended by opt_endofopt when there are any) to w.buf.
func (w *ngWriter) block(typ uint32, body []byte, opts []ngOpt) {
	le := binary.LittleEndian
	size := 12 + len(body)
	for _, o := range opts {
		size += 4 + (len(o.value)+3)&^3
	}
	if len(opts) > 0 {
		size += 4
	}
	w.buf = le.AppendUint32(w.buf, typ)
	w.buf = le.AppendUint32(w.buf, uint32(size))
	w.buf = append(w.buf, body...)
	for _, o := range opts {
		w.buf = le.AppendUint16(w.buf, o.code)
		w.buf = le.AppendUint16(w.buf, uint16(len(o.value)))
		w.buf = append(w.buf, o.value...)
		w.buf = append(w.buf, make([]byte, (4-len(o.value)%4)%4)...)
	}
	if len(opts) > 0 {
		w.buf = append(w.buf, 0, 0, 0, 0) // opt_endofopt
	}
	w.buf = le.AppendUint32(w.buf, uint32(size))
}

// writePacket writes data, whole (captured and original length alike), in
// an enhanced packet block of interface 0 stamped ts.
func (w *ngWriter) writePacket(ts time.Time, data []byte) error {
	le := binary.LittleEndian
	size := 32 + (len(data)+3)&^3
	ns := uint64(ts.UnixNano())
	h := w.buf[:0]
	h = le.AppendUint32(h, pcapngEPB)
	h = le.AppendUint32(h, uint32(size))
	h = le.AppendUint32(h, 0) // interface ID
	h = le.AppendUint32(h, uint32(ns>>32))
	h = le.AppendUint32(h, uint32(ns))
	h = le.AppendUint32(h, uint32(len(data))) // captured length
	h = le.AppendUint32(h, uint32(len(data))) // original length
	w.buf = h
	if _, err := w.w.Write(h); err != nil {
		return err
	}
	if _, err := w.w.Write(data); err != nil {
		return err
	}
	t := append(w.buf[:0], 0, 0, 0)[:(4-len(data)%4)%4]
	t = le.AppendUint32(t, uint32(size))
	w.buf = t
	_, err := w.w.Write(t)
	return err
}

// Flush writes out what is buffered.
func (w *ngWriter) Flush() error {
	return w.w.Flush()
}
