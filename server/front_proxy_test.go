package server

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"testing"
)

// TestProxyHeaderLayout checks marshalProxyHeader against the binary
// layout of haproxy's proxy-protocol.txt §2.2, written out by hand: the
// signature, 0x21 (v2, PROXY), 0x11 (TCP over IPv4), the length, source
// and destination addresses, source and destination ports, then TLVs.
func TestProxyHeaderLayout(t *testing.T) {
	src, dst := netip.MustParseAddrPort("192.0.2.1:1234"), netip.MustParseAddrPort("127.0.0.1:443")
	got, err := marshalProxyHeader(src, dst, tlv{0xE0, []byte{0xAA, 0xBB}})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := hex.DecodeString("0d0a0d0a000d0a515549540a" + "21" + "11" + "0011" +
		"c0000201" + "7f000001" + "04d2" + "01bb" + "e0" + "0002" + "aabb")
	if !bytes.Equal(got, want) {
		t.Fatalf("header\n got %x\nwant %x", got, want)
	}
	h, rest, err := readProxyHeader(bytes.NewReader(append(got, 22, 3, 1)))
	if err != nil || rest != nil || h.src != src || h.dst != dst || !bytes.Equal(h.tlvs[0xE0], []byte{0xAA, 0xBB}) {
		t.Fatalf("read back %+v, %x, %v", h, rest, err)
	}
}

func TestProxyHeaderIPv6AndErrors(t *testing.T) {
	src, dst := netip.MustParseAddrPort("[2001:db8::1]:5000"), netip.MustParseAddrPort("127.0.0.1:443")
	hdr, err := marshalProxyHeader(src, dst)
	if err != nil {
		t.Fatal(err)
	}
	if hdr[13] != proxyTCP6 || len(hdr) != proxyFixedLen+36 {
		t.Fatalf("IPv6 header %x", hdr)
	}
	h, _, err := readProxyHeader(bytes.NewReader(hdr))
	if err != nil || h.src != src || h.dst.Addr() != dst.Addr() || h.dst.Port() != 443 {
		t.Fatalf("read back %+v, %v", h, err)
	}
	// A TLS record is not a header: its first byte comes back to replay.
	if h, rest, err := readProxyHeader(bytes.NewReader([]byte{22, 3, 1, 0, 5})); h != nil || !bytes.Equal(rest, []byte{22}) || err != nil {
		t.Errorf("TLS bytes: %+v %x %v", h, rest, err)
	}
	bad := map[string][]byte{
		"truncated fixed part": hdr[:10],
		"truncated body":       hdr[:len(hdr)-1],
		"version 1 command":    append(append(append([]byte(nil), hdr[:12]...), 0x11), hdr[13:]...),
		"UDP family":           append(append(append([]byte(nil), hdr[:13]...), 0x12), hdr[14:]...),
		"too long":             append(append([]byte(nil), hdr[:14]...), 0xff, 0xff),
		"short address block":  append(append([]byte(nil), proxySig...), 0x21, 0x11, 0, 4, 1, 2, 3, 4),
		"truncated TLV":        append(append([]byte(nil), proxySig...), 0x21, 0x11, 0, 14, 1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2, 0xE0, 0),
	}
	for name, in := range bad {
		if _, _, err := readProxyHeader(bytes.NewReader(in)); !errors.Is(err, ErrFrontHeader) {
			t.Errorf("%s: err = %v, want ErrFrontHeader", name, err)
		}
	}
}

// TestFrontVerdict seals and opens a verdict, and checks that every
// change the MAC covers is refused: another secret, another ClientHello
// random, another client address, a flipped verdict byte.
func TestFrontVerdict(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	src, dst := netip.MustParseAddrPort("192.0.2.7:4000"), netip.MustParseAddrPort("127.0.0.1:443")
	random := bytes.Repeat([]byte{7}, 32)
	id := uint8(9)
	v := frontVerdict{ECH: ECHAccepted, OuterSNI: "public.lab.test", ConfigID: &id}
	v.Suite.KDF, v.Suite.AEAD = 1, 1
	hdr, err := sealFrontHeader(secret, src, dst, v, random)
	if err != nil {
		t.Fatal(err)
	}
	open := func(b, key, rnd []byte) (*frontVerdict, error) {
		h, _, err := readProxyHeader(bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		return openFrontVerdict(key, h, rnd)
	}
	got, err := open(hdr, secret, random)
	if err != nil || got.ECH != v.ECH || got.OuterSNI != v.OuterSNI || got.ConfigID == nil || *got.ConfigID != 9 || got.Suite != v.Suite {
		t.Fatalf("opened %+v, %v", got, err)
	}
	otherAddr, _ := sealFrontHeader(secret, src, dst, v, random)
	otherAddr[16+3]++ // last byte of the source address
	flipped := append([]byte(nil), hdr...)
	flipped[len(hdr)-40]++ // inside the verdict, before the MAC
	for name, tc := range map[string]struct{ b, key, rnd []byte }{
		"other secret":  {hdr, []byte("another secret, another secret!!"), random},
		"other random":  {hdr, secret, make([]byte, 32)},
		"other address": {otherAddr, secret, random},
		"flipped byte":  {flipped, secret, random},
	} {
		if _, err := open(tc.b, tc.key, tc.rnd); !errors.Is(err, ErrFrontHeader) {
			t.Errorf("%s: err = %v, want ErrFrontHeader", name, err)
		}
	}
}

// FuzzFrontHeader feeds arbitrary bytes to the backend's front-header
// reader and the verdict check: they must never panic, never read more
// than the header plus its fixed part, and a header they accept must
// verify only with the secret it was sealed with.
func FuzzFrontHeader(f *testing.F) {
	secret := []byte("fuzz front secret fuzz front sec")
	id := uint8(1)
	good, err := sealFrontHeader(secret, netip.MustParseAddrPort("192.0.2.1:1"), netip.MustParseAddrPort("127.0.0.1:2"),
		frontVerdict{ECH: ECHAccepted, OuterSNI: "public.lab.test", ConfigID: &id}, make([]byte, 32))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:20])
	f.Add([]byte{22, 3, 1, 0, 5, 1, 0, 0, 1, 0})
	f.Add(append(append([]byte(nil), proxySig...), 0x21, 0x21, 0, 0))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		h, rest, err := readProxyHeader(r)
		read := len(data) - r.Len()
		if read > proxyFixedLen+maxProxyBody {
			t.Fatalf("read %d bytes", read)
		}
		if err != nil || h == nil {
			if h == nil && err == nil && (len(rest) == 0 || !bytes.Equal(rest, data[:len(rest)])) {
				t.Fatalf("not a header, but replay %x of %x", rest, data)
			}
			return
		}
		if v, err := openFrontVerdict(secret, h, make([]byte, 32)); err == nil && v == nil {
			t.Fatal("verified without a verdict")
		}
		openFrontVerdict([]byte("x"), h, nil) //nolint:errcheck // must only not panic
	})
}
