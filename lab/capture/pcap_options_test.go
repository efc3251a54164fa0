package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// ngWithIDBOption is a pcapng of a section header and one Ethernet
// interface description carrying one option (code, value).
func ngWithIDBOption(code uint16, value []byte) []byte {
	le := binary.LittleEndian
	var b []byte
	b = le.AppendUint32(b, pcapngSHB)
	b = le.AppendUint32(b, 28)
	b = le.AppendUint32(b, 0x1A2B3C4D)
	b = le.AppendUint16(b, 1)
	b = le.AppendUint16(b, 0)
	b = le.AppendUint64(b, ^uint64(0))
	b = le.AppendUint32(b, 28)
	opt := le.AppendUint16(nil, code)
	opt = le.AppendUint16(opt, uint16(len(value)))
	opt = append(opt, value...)
	for len(opt)%4 != 0 {
		opt = append(opt, 0)
	}
	opt = append(opt, 0, 0, 0, 0) // opt_endofopt
	size := uint32(20 + len(opt))
	b = le.AppendUint32(b, 1)
	b = le.AppendUint32(b, size)
	b = le.AppendUint16(b, 1) // LINKTYPE_ETHERNET
	b = le.AppendUint16(b, 0)
	b = le.AppendUint32(b, 65535)
	b = append(b, opt...)
	return le.AppendUint32(b, size)
}

// TestReadBadInterfaceOptions: interface options that cannot be read (an
// if_tsresol of 2^-64 or 10^-20, which no 64-bit count can hold; pcapgo,
// which read captures before, panicked on the first, found by FuzzCompare)
// are a malformed capture, named by the option; good ones read.
func TestReadBadInterfaceOptions(t *testing.T) {
	for _, tc := range []struct {
		code  uint16
		value []byte
		field string
	}{
		{9, []byte{0x80 | 64}, "if_tsresol"},
		{9, []byte{20}, "if_tsresol"},
		{9, nil, "if_tsresol"},
		{11, nil, "if_filter"},
		{14, []byte{1, 2, 3}, "if_tsoffset"},
		{9, []byte{9}, ""},
		{9, []byte{0x80 | 63}, ""},
		{14, make([]byte, 8), ""},
	} {
		_, err := Read(bytes.NewReader(ngWithIDBOption(tc.code, tc.value)), func(*Packet) {})
		var ce *CaptureError
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("option %d %x: %v", tc.code, tc.value, err)
		case tc.field != "" && (!errors.As(err, &ce) || ce.Field != tc.field || !errors.Is(err, ErrMalformed)):
			t.Errorf("option %d %x: %v, want a malformed %s", tc.code, tc.value, err, tc.field)
		}
	}
}
