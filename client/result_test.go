package client

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestParseServerReport(t *testing.T) {
	for _, c := range []struct {
		body string
		want map[string]any
	}{
		{`{"sni":"secret.lab.test","ech":true}`, map[string]any{"sni": "secret.lab.test", "ech": true}},
		{"fl=1\nh=secret.lab.test\nsni=encrypted\n", map[string]any{"fl": "1", "h": "secret.lab.test", "sni": "encrypted"}},
		{"<html>hello</html>", nil},
		{"a=1\nnot a pair\n", nil},
		{"{broken", nil},
		{"", nil},
		{"[1,2]", nil},
	} {
		got := ParseServerReport([]byte(c.body))
		if len(got) != len(c.want) || (c.want == nil) != (got == nil) {
			t.Errorf("%q: got %v, want %v", c.body, got, c.want)
			continue
		}
		for k, v := range c.want {
			if got[k] != v {
				t.Errorf("%q: %s = %v, want %v", c.body, k, got[k], v)
			}
		}
	}
}

func FuzzParseServerReport(f *testing.F) {
	f.Add([]byte(`{"sni":"x"}`))
	f.Add([]byte("a=b\nc=d"))
	f.Add([]byte("=\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m := ParseServerReport(b)
		if m != nil {
			if _, err := json.Marshal(m); err != nil {
				t.Fatalf("report does not re-encode: %v", err)
			}
		}
	})
}

func FuzzSelectConfig(f *testing.F) {
	f.Add([]byte{0, 4, 0xfe, 0x0d, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		offer, cfg, err := SelectConfig(b)
		if err == nil && (cfg == nil || len(offer) != 2+len(cfg.Raw)) {
			t.Fatalf("SelectConfig returned %d bytes for a %d-byte config", len(offer), len(cfg.Raw))
		}
	})
}

func TestResultJSONAndTable(t *testing.T) {
	id := uint8(7)
	r := &Result{URL: "https://secret.lab.test/", Mode: ModeECH, ECH: ECHAccepted, ConfigID: &id,
		ServerSaw: map[string]any{"sni": "secret.lab.test"}}
	var buf bytes.Buffer
	if err := r.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back["ech"] != "accepted" || back["config_id"] != 7.0 || back["retried"] != false {
		t.Fatalf("JSON %s", buf.String())
	}
	buf.Reset()
	r.WriteTable(&buf)
	if !strings.Contains(buf.String(), "config id") || !strings.Contains(buf.String(), "server saw sni") {
		t.Fatalf("table:\n%s", buf.String())
	}
}
