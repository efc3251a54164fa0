package server

import (
	"bytes"
	"crypto/tls"
	"net"
	"testing"

	"github.com/echlab/echlab/ech"
)

// FuzzSplitReader feeds arbitrary bytes to the split relay's ClientHello
// reader (readFlight) and the parse that follows it. It must never panic,
// never read past the records it returns, and respect its size bound.
func FuzzSplitReader(f *testing.F) {
	k := newKey(f, 4)
	pc, sc := net.Pipe()
	go tls.Client(pc, &tls.Config{ServerName: "secret.lab.test", EncryptedClientHelloConfigList: configList(f, k)}).Handshake() //nolint:errcheck
	good, err := readFlight(sc, DefaultMaxHello)
	pc.Close()
	if err != nil {
		f.Fatal(err)
	}
	raw := good.raw()
	// A real ECH ClientHello, fragmented, so that record reassembly is
	// covered; the fuzzer's minimizer is slow on inputs this size, so the
	// rest of the corpus is small.
	f.Add(refragment(raw, 256))
	f.Add(append([]byte{20, 3, 3, 0, 1, 1}, raw[:64]...)) // CCS first, truncated
	f.Add([]byte{22, 3, 1, 0, 6, 1, 0, 0, 40, 3, 3, 22, 3, 1, 0, 3, 0, 0, 0})
	f.Add([]byte{22, 3, 1, 0, 4, 1, 0, 0, 0})
	f.Add([]byte{21, 3, 3, 0, 2, 2, 40})
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	const limit = 2048
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		fl, err := readFlight(r, limit)
		if err != nil {
			return
		}
		got := fl.raw()
		if len(got) > limit || !bytes.Equal(got, data[:len(got)]) || int(r.Size())-r.Len() != len(got) {
			t.Fatalf("read %d bytes, returned %d, limit %d", int(r.Size())-r.Len(), len(got), limit)
		}
		if len(fl.msg) < 4 {
			t.Fatalf("message of %d bytes", len(fl.msg))
		}
		ech.ParseClientHello(fl.msg) //nolint:errcheck // only must not panic; ech fuzzes Open itself
	})
}
