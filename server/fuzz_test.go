package server

import (
	"fmt"
	"time"
	"bytes"
	"crypto/tls"
	"net"
	"testing"

	"github.com/echlab/echlab/ech"
)

// FuzzSplitReader feeds arbitrary bytes to the split relay's ClientHello
// reader and the parse that follows it. It must never panic, never read past the records it returns, and respect
// its size bound.
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
	f.Add(raw)
	f.Add(append([]byte{20, 3, 3, 0, 1, 1}, raw...)) // CCS first
	f.Add(raw[:len(raw)/2])
	f.Add([]byte{22, 3, 1, 0, 4, 1, 0, 0, 0})
	f.Add([]byte{21, 3, 3, 0, 2, 2, 40})
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	const limit = 4096
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		var fl *flight
		var err error
		done0 := make(chan bool)
		go func() { fl, err = readFlight(r, limit); close(done0) }()
		select {
		case <-done0:
		case <-time.After(2 * time.Second):
			panic(fmt.Sprintf("HANG read %x", data))
		}
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
		done := make(chan bool)
		go func() { ech.ParseClientHello(fl.msg); close(done) }()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			panic(fmt.Sprintf("HANG parse %x", fl.msg))
		}
	})
}
