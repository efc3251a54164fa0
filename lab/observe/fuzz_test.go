package observe

import (
	"bytes"
	"os"
	"testing"
	"time"
)

// FuzzCompare feeds arbitrary bytes to Compare as a capture: it must return
// a report or an error, never panic.
func FuzzCompare(f *testing.F) {
	valid, err := os.ReadFile(goldenCapture)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Add(valid[:64])
	f.Add([]byte{0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		rep, err := Compare(bytes.NewReader(b), CompareOptions{})
		if err == nil {
			var out bytes.Buffer
			WriteTable(&out, rep)
			WriteMarkdown(&out, rep)
			WriteCSV(&out, rep)
			WriteJSON(&out, rep)
		}
	})
}

// FuzzQUICInitial feeds arbitrary datagrams to the Initial packet reader.
func FuzzQUICInitial(f *testing.F) {
	f.Add([]byte{0xc3, 0, 0, 0, 1, 8, 0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08, 0, 0, 0x44, 0x9e, 0, 0, 0, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		var q quicConn
		q.addDatagram(true, b)
		q.addDatagram(false, b)
		if msg, ok := firstMessage(assembleCrypto(q.client.crypto)); ok && len(msg) < 4 {
			t.Fatal("short message")
		}
	})
}

// FuzzDNSStream feeds arbitrary bytes to the DNS-over-TCP reader.
func FuzzDNSStream(f *testing.F) {
	f.Add([]byte{0, 12, 0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		parseDNSStream(b, time.Time{})
	})
}
