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

// TestCompareCommandStream: --stream writes the same flows to --json and
// --csv as the whole comparison (numbered in the order their connections
// closed: on the golden capture, the same order), and the same Markdown
// report; --stream=false is the whole comparison.
func TestCompareCommandStream(t *testing.T) {
	dir := t.TempDir()
	capture := filepath.Join("..", "..", "lab", "observe", "testdata", "ech-tls.pcapng")
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, mode := range []string{"--stream", "--stream=false"} {
		prefix := strings.TrimPrefix(mode, "--")
		if err := runCompare([]string{capture, mode, "--json", filepath.Join(dir, prefix+".jsonl"), "--csv", filepath.Join(dir, prefix+".csv"),
			"--markdown", filepath.Join(dir, prefix+".md")}); err != nil {
			t.Fatal(err)
		}
	}
	for _, ext := range []string{".jsonl", ".csv", ".md"} {
		if s, w := read("stream"+ext), read("stream=false"+ext); s != w || len(s) < 100 {
			t.Errorf("%s streamed:\n%s\nwhole:\n%s", ext, s, w)
		}
	}
}
