package interop

import (
	"bytes"
	"testing"
	"time"

	"github.com/echlab/echlab/server"
)

type nopCloser struct{ *bytes.Buffer }

func (nopCloser) Close() error { return nil }

func TestConnLogSplitWrites(t *testing.T) {
	var file bytes.Buffer
	c := newConnLog(nopCloser{&file})
	in := `{"ech":"accepted","inner_sni":"secret.lab.test","config_id":7}` + "\n" + `not json` + "\n" + `{"ech":"grease"}` + "\n"
	for i := 0; i < len(in); i += 5 { // records arrive in pieces
		c.Write([]byte(in[i:min(i+5, len(in))]))
	}
	if file.String() != in {
		t.Errorf("file holds %q, want the bytes written", file.String())
	}
	recs := c.Since(0)
	if len(recs) != 2 || recs[0].InnerSNI != "secret.lab.test" || *recs[0].ConfigID != 7 || recs[1].ECH != "grease" {
		t.Errorf("records %+v, want the two JSON lines", recs)
	}
	if m := c.Mark(); m != 2 || len(c.Since(m)) != 0 {
		t.Errorf("Mark %d, Since(Mark) %d records", m, len(c.Since(m)))
	}
}

// FuzzConnLog feeds arbitrary bytes as the server's log: never a panic,
// and every byte reaches the file.
func FuzzConnLog(f *testing.F) {
	f.Add([]byte(`{"ech":"accepted","config_id":300}` + "\n{\n\n"))
	f.Add([]byte(`{"time":"x","handshake_ms":"y"}` + "\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var file bytes.Buffer
		c := newConnLog(nopCloser{&file})
		c.Write(b)
		if !bytes.Equal(file.Bytes(), b) {
			t.Fatal("bytes lost")
		}
		if n := c.Mark(); n > bytes.Count(b, []byte("\n")) {
			t.Fatalf("%d records from %d lines", n, bytes.Count(b, []byte("\n")))
		}
	})
}

// TestConnLogWaitFor: waitFor returns as soon as a record makes its
// condition true, woken by the write, and false after its bound when none
// does.
func TestConnLogWaitFor(t *testing.T) {
	c := newConnLog(nopCloser{&bytes.Buffer{}})
	c.Write([]byte(`{"ech":"none"}` + "\n"))
	mark := c.Mark()
	written := make(chan struct{})
	go func() {
		defer close(written)
		c.Write([]byte(`{"ech":"accepted"}` + "\n"))
	}()
	start := time.Now()
	if !c.waitFor(mark, time.Minute, func(r []server.ConnRecord) bool { return len(r) == 1 && r[0].ECH == "accepted" }) {
		t.Fatal("waitFor missed the record")
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("waitFor took %v: not woken by the write", d)
	}
	<-written
	start = time.Now()
	if c.waitFor(mark, 50*time.Millisecond, func(r []server.ConnRecord) bool { return len(r) == 2 }) {
		t.Error("waitFor held without the second record")
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("waitFor gave up after %v, before its bound", d)
	}
}
