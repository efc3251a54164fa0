package server

import (
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"testing"
)

// clientHelloRecords captures the first flight of a crypto/tls client.
func clientHelloRecords(t *testing.T, cfg *tls.Config) []byte {
	t.Helper()
	pc, sc := net.Pipe()
	go tls.Client(pc, cfg).Handshake() //nolint:errcheck
	f, err := readFlight(sc, DefaultMaxHello)
	pc.Close()
	if err != nil {
		t.Fatal(err)
	}
	return f.raw()
}

// refragment re-frames a one-record ClientHello into records of at most n
// bytes of payload each.
func refragment(rec []byte, n int) []byte {
	msg := rec[5:]
	var out []byte
	for len(msg) > 0 {
		k := min(n, len(msg))
		out = append(out, 22, 3, 1, byte(k>>8), byte(k))
		out = append(out, msg[:k]...)
		msg = msg[k:]
	}
	return out
}

func TestReadFlight(t *testing.T) {
	raw := clientHelloRecords(t, clientTLS(t, "secret.lab.test", configList(t, newKey(t, 1))))
	msg := raw[5:]
	ccs := []byte{20, 3, 3, 0, 1, 1}
	trailer := []byte{23, 3, 3, 0, 1, 0}
	cases := []struct {
		name    string
		in      []byte
		limit   int
		wantErr bool
		pre     int
	}{
		{"one record", raw, DefaultMaxHello, false, 0},
		{"fragmented", refragment(raw, 100), DefaultMaxHello, false, 0},
		{"one-byte records", refragment(raw, 1), DefaultMaxHello, false, 0},
		{"after CCS", append(append([]byte(nil), ccs...), raw...), DefaultMaxHello, false, len(ccs)},
		{"over the limit", raw, len(raw) - 1, true, 0},
		{"truncated", raw[:len(raw)-1], DefaultMaxHello, true, 0},
		{"empty", nil, DefaultMaxHello, true, 0},
		{"application data", trailer, DefaultMaxHello, true, 0},
		{"zero-length record", []byte{22, 3, 1, 0, 0}, DefaultMaxHello, true, 0},
		{"SSLv2-style", []byte{0x80, 0x2e, 1, 3, 1, 0, 0}, DefaultMaxHello, true, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Bytes after the message stay unread (bad inputs end where
			// they end: a trailer could complete a truncated record).
			in := append([]byte(nil), tc.in...)
			if !tc.wantErr {
				in = append(in, trailer...)
			}
			r := bytes.NewReader(in)
			f, err := readFlight(r, tc.limit)
			if tc.wantErr {
				if !errors.Is(err, ErrClientHello) {
					t.Fatalf("err = %v, want ErrClientHello", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(f.msg, msg) || len(f.pre) != tc.pre || !bytes.Equal(f.raw(), tc.in) || r.Len() != len(trailer) {
				t.Errorf("msg equal %v, pre %d, raw equal %v, left %d", bytes.Equal(f.msg, msg), len(f.pre),
					bytes.Equal(f.raw(), tc.in), r.Len())
			}
		})
	}
}
