package server

import (
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/echlab/echlab/ech"
)

// clientHelloRecords captures the first flight of a crypto/tls client.
func clientHelloRecords(t testing.TB, cfg *tls.Config) []byte {
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
		{"64 records", refragment(raw, (len(msg)+63)/64), DefaultMaxHello, false, 0},
		{"one-byte records", refragment(raw, 1), DefaultMaxHello, true, 0},
		{"65 records", refragment(raw, len(msg)/65), DefaultMaxHello, true, 0},
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

// hostileHello is the most expensive ClientHello a client can send the
// relay within DefaultMaxHello: a real crypto/tls ECH ClientHello padded
// to the largest size whose one-byte records still fit, cut into
// one-byte records.
func hostileHello(tb testing.TB) []byte {
	tb.Helper()
	rec := clientHelloRecords(tb, clientTLS(tb, "secret.lab.test", configList(tb, newKey(tb, 1))))
	ch, err := ech.ParseClientHello(rec[recordHeaderLen:])
	if err != nil {
		tb.Fatal(err)
	}
	const size = DefaultMaxHello/(recordHeaderLen+1) - 8 // message bytes
	ch.SetExtension(ech.ExtPadding, make([]byte, size-len(ch.Raw)-4))
	msg, err := ch.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	return refragment(ech.MarshalRecords(msg), 1)
}

// benchHostile sends the hostile hello to a split relay over loopback and
// waits for the relay's first answer (an alert, or the backend's
// ServerHello when the relay accepts it): the cost to the relay of one
// hostile connection.
func benchHostile(b *testing.B, addr string, hello []byte) {
	b.Helper()
	for i := 0; i < b.N; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		go c.Write(hello) //nolint:errcheck // the relay may close before it reads everything
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err != nil {
			b.Fatalf("no answer from the relay: %v", err)
		}
		c.Close()
	}
}

// TestSplitOneByteRecordsCPUBound asserts, through the benchmark, that a
// hostile connection costs the relay little: the old reader, which
// re-parsed every record so far on each new one, took about 1.2 s per
// connection here (and crypto/tls needs about 1 ms for such bytes); the
// linear reader with its record bound takes well under a millisecond.
func TestSplitOneByteRecordsCPUBound(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a benchmark")
	}
	l := startSplitLab(t, false)
	hello := hostileHello(t)
	r := testing.Benchmark(func(b *testing.B) { benchHostile(b, l.split.Addr(), hello) })
	const bound = 50 * time.Millisecond
	if r.N == 0 || time.Duration(r.NsPerOp()) > bound {
		t.Errorf("hostile connection: %v each over %d runs, want under %v", time.Duration(r.NsPerOp()), r.N, bound)
	}
	t.Logf("hostile connection (one-byte records): %v each over %d runs", time.Duration(r.NsPerOp()), r.N)
}

// TestReadFlightLinear reads the hostile hello with no record bound: the
// reader's cost must grow with the bytes, not with their square (the old
// reader re-parsed every record so far on each new one: about 0.4 s of
// CPU for these 10 900 records).
func TestReadFlightLinear(t *testing.T) {
	hello := hostileHello(t)
	start := time.Now()
	f, err := readFlightMax(bytes.NewReader(hello), DefaultMaxHello, len(hello))
	took := time.Since(start)
	if err != nil || len(f.raw()) != len(hello) {
		t.Fatalf("read %v: %v", f != nil, err)
	}
	if took > 150*time.Millisecond {
		t.Errorf("%d one-byte records took %v", len(hello)/(recordHeaderLen+1), took)
	}
}
