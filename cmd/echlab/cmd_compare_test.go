package main

import (
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCompareCommand runs echlab compare on the lab's golden capture with
// flags after the capture name, and reads back the files it wrote.
func TestCompareCommand(t *testing.T) {
	dir := t.TempDir()
	js, cs, md := filepath.Join(dir, "f.jsonl"), filepath.Join(dir, "f.csv"), filepath.Join(dir, "f.md")
	capture := filepath.Join("..", "..", "lab", "observe", "testdata", "ech-tls.pcapng")
	if err := runCompare([]string{"--csv", cs, capture, "--json", js, "--markdown", md}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	var flow struct {
		SNI string `json:"sni"`
		ECH string `json:"ech"`
	}
	if err := json.Unmarshal([]byte(strings.SplitN(string(b), "\n", 2)[0]), &flow); err != nil || flow.SNI != "public.lab.test" || flow.ECH != "ech-outer" {
		t.Errorf("JSON: %v %+v", err, flow)
	}
	f, err := os.Open(cs)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if rows, err := csv.NewReader(f).ReadAll(); err != nil || len(rows) != 3 {
		t.Errorf("CSV: %v, %d rows", err, len(rows))
	}
	if b, err := os.ReadFile(md); err != nil || !strings.Contains(string(b), "## Privacy summary") {
		t.Errorf("Markdown: %v", err)
	}
}

func TestCompareCommandErrors(t *testing.T) {
	if err := runCompare(nil); err != errUsage {
		t.Errorf("no capture: %v", err)
	}
	notCapture := filepath.Join(t.TempDir(), "x.txt")
	os.WriteFile(notCapture, []byte("hello, not a capture"), 0o644)
	if err := runCompare([]string{notCapture}); err == nil || !strings.Contains(err.Error(), "not a pcap") {
		t.Errorf("text file: %v", err)
	}
	if err := runCompare([]string{"--keys", t.TempDir(), filepath.Join("..", "..", "lab", "observe", "testdata", "ech-tls.pcapng")}); err == nil {
		t.Error("an empty key directory gave no error")
	}
}
