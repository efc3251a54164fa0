package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCompareAdversaryLog runs a grid ('block-ech rst' and strip-ech
// against the echlab client with Do53), then echlab compare
// --adversary-log on its capture and decision log: the table ends with
// what the adversary did (the reset and the rewrite, every decision
// joined), --markdown - has the section, --json marks the reset flow; a
// malformed log line is an error naming the file and the line.
func TestCompareAdversaryLog(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "grid")
	if r := runCLI(t, dir, 2*time.Minute, "run", "--adversary", "block-ech rst,strip-ech", "--grid-rows", "echlab/do53", "--out", out); r.code != 0 {
		t.Fatalf("echlab run --adversary: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	capture, log := filepath.Join(out, "capture.pcapng"), filepath.Join(out, "adversary.jsonl")
	js := filepath.Join(dir, "flows.jsonl")
	r := runCLI(t, dir, time.Minute, "compare", capture, "--adversary-log", log, "--json", js)
	if r.code != 0 {
		t.Fatalf("echlab compare --adversary-log: exit %d\n%s", r.code, r.stderr)
	}
	table := r.stdout[strings.Index(r.stdout, "privacy summary"):]
	for _, w := range []string{"what the adversary did (" + log + ": ", "block-ech rst  block-ech rst  rst      1          1",
		"strip-ech      strip-ech      rewrite  1          1", "flows it blocked or rewrote:"} {
		if !strings.Contains(table, w) {
			t.Errorf("stdout lacks %q:\n%s", w, table)
		}
	}
	if strings.Contains(r.stdout, "matched no flow") {
		t.Errorf("decisions joined no flow:\n%s", r.stdout)
	}
	if b, err := os.ReadFile(js); err != nil || !strings.Contains(string(b), `"adversary_action":"rst","adversary_policy":"block-ech rst","adversary_column":"block-ech rst"`) {
		t.Errorf("--json: %v\n%s", err, b)
	}
	md := runCLI(t, dir, time.Minute, "compare", capture, "--adversary-log", log, "--markdown", "-")
	if md.code != 0 || !strings.Contains(md.stdout, "## What the adversary did") || !strings.Contains(md.stdout, "| strip-ech | strip-ech | rewrite | 1 | 1 |") {
		t.Errorf("--markdown -: exit %d\n%s%s", md.code, md.stdout, md.stderr)
	}
	// Without the log, no trace of it.
	if plain := runCLI(t, dir, time.Minute, "compare", capture); plain.code != 0 || strings.Contains(plain.stdout, "adversary") {
		t.Errorf("without --adversary-log: exit %d\n%s", plain.code, plain.stdout)
	}

	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	bad := filepath.Join(dir, "bad.jsonl")
	os.WriteFile(bad, []byte(first+"\n"+strings.Replace(first, `"action":"pass"`, `"action":"nuke"`, 1)+"\n"), 0o644)
	e := runCLI(t, dir, time.Minute, "compare", capture, "--adversary-log", bad)
	if e.code == 0 || !strings.Contains(e.stderr, bad+" line 2: action \"nuke\"") {
		t.Errorf("malformed log: exit %d\n%s", e.code, e.stderr)
	}
}
