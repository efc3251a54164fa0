package server

import (
	"bytes"
	"encoding/json"
	"testing"
)

// TestLogFieldNames pins the JSON keys the lab and notebooks read.
func TestLogFieldNames(t *testing.T) {
	k := newKey(t, 2)
	logBuf := &syncBuffer{}
	s := startServer(t, Config{Keys: NewStaticKeys(k), Log: logBuf})
	getJSON(t, httpClient(s.Addr(), clientTLS(t, "secret.lab.test", configList(t, k))), "secret.lab.test")
	logBuf.waitRecords(t, 1)
	line := bytes.TrimSpace(logBuf.Bytes())
	if bytes.Count(line, []byte("\n")) != 0 {
		t.Fatalf("want one line, got %q", line)
	}
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"schema", "time", "mode", "transport", "client_addr", "outer_sni", "inner_sni",
		"ech", "config_id", "retry_configs", "hrr", "handshake_ms", "alpn", "version", "cipher", "group", "hpke_suite"} {
		if _, ok := m[key]; !ok {
			t.Errorf("log line lacks %q: %s", key, line)
		}
	}
	if m["ech"] != "accepted" || m["config_id"] != 2.0 || m["transport"] != "tcp" || m["hrr"] != false {
		t.Errorf("values: %s", line)
	}
}
