package interop

import (
	"bytes"
	"testing"
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
