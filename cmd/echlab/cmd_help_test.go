package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// nestedCommands dispatch a subcommand before any flags: a bad first
// argument is an unknown subcommand, not a bad flag.
var nestedCommands = []string{"ech", "esni", "interop"}

func commandNames() []string {
	var names []string
	for n := range commands {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func TestHelpListsEveryCommand(t *testing.T) {
	r := runCLI(t, "", time.Minute, "help")
	if r.code != 0 {
		t.Fatalf("echlab help: exit %d\n%s", r.code, r.stderr)
	}
	for _, n := range commandNames() {
		if !strings.Contains(r.stdout, "\n  "+n+" ") || !strings.Contains(r.stdout, commands[n].summary) {
			t.Errorf("echlab help does not list %s with its summary:\n%s", n, r.stdout)
		}
	}
	if r := runCLI(t, "", time.Minute); r.code != 2 || !strings.Contains(r.stderr, "Usage: echlab COMMAND") {
		t.Errorf("echlab without a command: exit %d, stderr %q", r.code, r.stderr)
	}
	r = runCLI(t, "", time.Minute, "no-such-command")
	if r.code != 2 || !strings.Contains(r.stderr, `unknown command "no-such-command"`) {
		t.Errorf("unknown command: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestEveryCommandHelp(t *testing.T) {
	for _, n := range commandNames() {
		for _, args := range [][]string{{n, "-h"}, {"help", n}} {
			r := runCLI(t, "", time.Minute, args...)
			out := r.stdout + r.stderr
			if r.code != 0 || !strings.Contains(out, "Usage: echlab "+n) {
				t.Errorf("echlab %s: exit %d, output:\n%s", strings.Join(args, " "), r.code, out)
			}
		}
	}
}

func TestEveryCommandBadFlag(t *testing.T) {
	for _, n := range commandNames() {
		r := runCLI(t, "", time.Minute, n, "--no-such-flag")
		if r.code != 2 {
			t.Errorf("echlab %s --no-such-flag: exit %d, want 2\n%s", n, r.code, r.stderr)
		}
		want := "flag provided but not defined: -no-such-flag"
		if slices.Contains(nestedCommands, n) {
			want = "Usage: echlab " + n
		}
		if !strings.Contains(r.stderr, want) {
			t.Errorf("echlab %s --no-such-flag: stderr lacks %q:\n%s", n, want, r.stderr)
		}
	}
	// A nested command's own flags are checked too.
	r := runCLI(t, "", time.Minute, "ech", "inspect", "--no-such-flag")
	if r.code != 2 || !strings.Contains(r.stderr, "flag provided but not defined: -no-such-flag") {
		t.Errorf("echlab ech inspect --no-such-flag: exit %d\n%s", r.code, r.stderr)
	}
}
