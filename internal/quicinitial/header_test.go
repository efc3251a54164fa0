package quicinitial

import (
	"errors"
	"testing"
)

func TestParseHeader(t *testing.T) {
	dcid := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	initial := protect(t, V1, dcid, 3, []byte{6, 0, 1, 1})
	h, err := ParseHeader(append(initial, 0x40, 1, 2)) // a short-header packet coalesced after
	if err != nil || !h.Initial || h.Retry || h.Version != V1 || string(h.DCID) != string(dcid) || len(h.SCID) != 0 || h.End != len(initial) || h.PNOffset != 6+8+1+1+2 {
		t.Fatalf("Initial: %+v %v", h, err)
	}
	h, err = ParseHeader(protect(t, V2, dcid, 0, nil))
	if err != nil || !h.Initial || h.Version != V2 {
		t.Fatalf("v2 Initial: %+v %v", h, err)
	}
	retry := append([]byte{0xf0, 0, 0, 0, 1, 0, 4, 9, 9, 9, 9}, make([]byte, 30)...)
	if h, err := ParseHeader(retry); err != nil || !h.Retry || h.Initial || h.End != len(retry) || string(h.SCID) != "\x09\x09\x09\x09" {
		t.Errorf("Retry: %+v %v", h, err)
	}
	vn := []byte{0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}
	if h, err := ParseHeader(vn); err != nil || !h.VersionNegotiation || h.End != len(vn) {
		t.Errorf("Version Negotiation: %+v %v", h, err)
	}
	bad := map[string][]byte{
		"empty":             {},
		"short header":      {0x40, 0, 0, 0, 1, 0, 0, 0},
		"too short":         {0xc0, 0, 0, 0, 1, 0},
		"DCID over 20":      append([]byte{0xc0, 0, 0, 0, 1, 21}, make([]byte, 30)...),
		"DCID past the end": {0xc0, 0, 0, 0, 1, 8, 1, 2},
		"no SCID length":    {0xc0, 0, 0, 0, 1, 1, 1},
		"unknown version":   {0xc0, 0xff, 0, 0, 0x1d, 0, 0, 0, 0x41, 0},
		"token past end":    {0xc0, 0, 0, 0, 1, 0, 0, 0x05, 1},
		"length past end":   {0xc0, 0, 0, 0, 1, 0, 0, 0, 0x40, 0x40},
		"length under 20":   append([]byte{0xc0, 0, 0, 0, 1, 0, 0, 0, 19}, make([]byte, 19)...),
		"varint cut":        {0xc0, 0, 0, 0, 1, 0, 0, 0, 0x80, 0},
	}
	for name, b := range bad {
		if h, err := ParseHeader(b); !errors.Is(err, ErrPacket) {
			t.Errorf("%s: %+v %v, want ErrPacket", name, h, err)
		}
	}
}

func TestReadVarint(t *testing.T) {
	// RFC 9000 Appendix A.1 examples.
	cases := []struct {
		in   []byte
		want uint64
	}{
		{[]byte{0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c}, 151288809941952652},
		{[]byte{0x9d, 0x7f, 0x3e, 0x7d}, 494878333},
		{[]byte{0x7b, 0xbd}, 15293},
		{[]byte{0x25}, 37},
		{[]byte{0x40, 0x25}, 37},
	}
	for _, c := range cases {
		if v, n, ok := readVarint(c.in); !ok || v != c.want || n != len(c.in) {
			t.Errorf("%x: %d %d %v", c.in, v, n, ok)
		}
		if _, _, ok := readVarint(c.in[:len(c.in)-1]); ok && len(c.in) > 1 {
			t.Errorf("%x cut short: ok", c.in)
		}
	}
}
