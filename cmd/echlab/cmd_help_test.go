package main

import (
	"os"
	"path/filepath"
	"regexp"
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

// subcommands are the nested commands, whose flags have their own help.
var subcommands = [][]string{{"ech", "inspect"}, {"esni", "keygen"}, {"esni", "inspect"}, {"interop", "browsers"}}

// helpTexts returns the help of every command ("echlab help X") and of
// every nested subcommand ("echlab X SUB --help").
func helpTexts(t *testing.T) map[string]string {
	t.Helper()
	texts := map[string]string{}
	for _, n := range commandNames() {
		r := runCLI(t, "", time.Minute, "help", n)
		texts[n] = r.stdout + r.stderr
	}
	for _, sub := range subcommands {
		r := runCLI(t, "", time.Minute, append(sub, "--help")...)
		texts[strings.Join(sub, " ")] = r.stdout + r.stderr
	}
	return texts
}

// helpFlag is one flag as a help text lists it.
type helpFlag struct{ name, typ, usage string }

var helpFlagLine = regexp.MustCompile(`^  --([\w-]+)(?: (\w+))?$`)

// parseHelpFlags reads the flag list of a help text.
func parseHelpFlags(text string) []helpFlag {
	var flags []helpFlag
	for _, line := range strings.Split(text, "\n") {
		if m := helpFlagLine.FindStringSubmatch(line); m != nil {
			flags = append(flags, helpFlag{name: m[1], typ: m[2]})
		} else if u, ok := strings.CutPrefix(line, "    \t"); ok && len(flags) > 0 {
			flags[len(flags)-1].usage += u + " "
		}
	}
	return flags
}

// singleDash finds a flag written with one dash (-flag) in prose or in a
// flag list.
var singleDash = regexp.MustCompile(`(?:^|[\s(\[,'"/=` + "`" + `])-[a-zA-Z][\w-]*`)

// TestHelpOneFlagStyle: every help text writes flags as --flag, and one
// idea has one name in every command: --pki is the lab CA folder, --keys
// a key folder (never a count), --log the JSON-lines log, --ca a PEM file,
// --out never a key or CA folder; the old names are gone.
func TestHelpOneFlagStyle(t *testing.T) {
	banned := []string{"ca-dir", "querylog", "query-log", "cadir", "key-dir", "keydir", "ca-file", "esni"}
	total := 0
	for cmd, text := range helpTexts(t) {
		if !strings.Contains(text, "Usage: echlab "+cmd) {
			t.Errorf("echlab help %s: no usage line:\n%s", cmd, text)
		}
		for _, line := range strings.Split(text, "\n") {
			if m := singleDash.FindString(line); m != "" {
				t.Errorf("echlab help %s: single-dash flag %q in %q", cmd, strings.TrimSpace(m), line)
			}
		}
		flags := parseHelpFlags(text)
		total += len(flags)
		for _, f := range flags {
			bad := func(why string) { t.Errorf("echlab help %s: --%s %s: %s", cmd, f.name, f.typ, why) }
			switch {
			case slices.Contains(banned, f.name):
				bad("an old or duplicate name")
			case (f.name == "pki") != strings.Contains(f.usage, "folder of the lab CA"):
				bad("the lab CA folder is --pki, and --pki is the lab CA folder: " + f.usage)
			case f.name == "keys" && (f.typ == "int" || !strings.Contains(f.usage, "key") || !strings.Contains(f.usage, "folder")):
				bad("--keys is a key folder: " + f.usage)
			case f.name == "count" && f.typ != "int":
				bad("--count is a number")
			case (f.name == "log") != strings.Contains(f.usage, "log file"):
				bad("the JSON-lines log is --log, and --log is that log: " + f.usage)
			case f.name == "ca" && !strings.Contains(f.usage, "PEM file"):
				bad("--ca is a PEM file: " + f.usage)
			case f.name == "out" && (strings.Contains(f.usage, "key") || strings.Contains(f.usage, "CA")):
				bad("--out is not a key or CA folder: " + f.usage)
			}
		}
	}
	if total < 100 {
		t.Errorf("only %d flags found in the help texts: the flag list format changed?", total)
	}
}

// TestDefaultAddressesApart: the resolver, echlab server and echlab split
// listen on loopback ports that do not collide, so the three run side by
// side without flags; help shows the server's and the split's.
func TestDefaultAddressesApart(t *testing.T) {
	tcp := []string{defaultDo53, defaultDoT, defaultDoH, defaultMetrics, defaultServerAddr, defaultSplitAddr}
	udp := []string{defaultDo53, defaultDoH, defaultDoQ, defaultServerAddr}
	for _, addrs := range [][]string{tcp, udp} {
		seen := map[string]bool{}
		for _, a := range addrs {
			if !strings.HasPrefix(a, "127.0.0.1:") || seen[a] {
				t.Errorf("default address %s is not loopback or is used twice in %v", a, addrs)
			}
			seen[a] = true
		}
	}
	for cmd, want := range map[string]string{"server": `"127.0.0.1:4443"`, "split": `"127.0.0.1:4444"`} {
		for _, f := range parseHelpFlags(runCLI(t, "", time.Minute, "help", cmd).stderr) {
			if f.name == "addr" && !strings.Contains(f.usage, "(default "+want+")") {
				t.Errorf("echlab help %s: --addr %s, want default %s", cmd, f.usage, want)
			}
		}
	}
}

// docFiles are the documents and scripts that show echlab command lines.
var docFiles = []string{"README.md", "*/README.md", "lab/*/README.md", "lab/docker/*.sh",
	"lab/docker/docker-compose.yml", "bench/*.sh", "notebooks/*.sh", ".ci/run"}

// echlabCommands returns the echlab command lines of a document: from
// "echlab " to the end of the command (a backquote, pipe, ; or &&, or a
// comment), following backslash continuations.
func echlabCommands(text string) []string {
	var cmds []string
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		_, rest, ok := strings.Cut(lines[i], "echlab ")
		if !ok {
			_, rest, ok = strings.Cut(lines[i], `"$BIN" `)
		}
		for ok && strings.HasSuffix(strings.TrimSpace(rest), `\`) && i+1 < len(lines) {
			i++
			rest += " " + lines[i]
		}
		if ok {
			if end := strings.IndexAny(rest, "`|;#"); end >= 0 {
				rest = rest[:end]
			}
			rest, _, _ = strings.Cut(rest, "&&")
			cmds = append(cmds, rest)
		}
	}
	return cmds
}

// TestDocsUseOneFlagStyle: the README, the folder READMEs and the scripts
// write echlab's flags as --flag, and none uses an old name.
func TestDocsUseOneFlagStyle(t *testing.T) {
	old := regexp.MustCompile(`--?(ca-dir|querylog)\b|keygen\b.*--?(out|esni)\b|keygen\b.*--keys [0-9]`)
	// The checks find what they look for (a backslash-continued line).
	sample := echlabCommands("    echlab resolver --zone z \\\n      -publish x --ca-dir pki # -comment\n")
	if len(sample) != 1 || singleDash.FindString(sample[0]) != " -publish" || old.FindString(sample[0]) != "--ca-dir" {
		t.Fatalf("checks do not work: %q", sample)
	}
	n := 0
	for _, pattern := range docFiles {
		files, err := filepath.Glob(filepath.Join("..", "..", pattern))
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: %v", pattern, err)
		}
		for _, file := range files {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			for _, cmd := range echlabCommands(string(b)) {
				n++
				if m := singleDash.FindString(cmd); m != "" {
					t.Errorf("%s: single-dash flag %q in: echlab %s", file, strings.TrimSpace(m), cmd)
				}
				if m := old.FindString(cmd); m != "" {
					t.Errorf("%s: old flag name %q in: echlab %s", file, m, cmd)
				}
			}
			for _, line := range strings.Split(string(b), "\n") {
				if strings.Contains(file, "compose") && strings.Contains(line, `"-`) && !strings.Contains(line, `"--`) {
					t.Errorf("%s: single-dash flag in %q", file, line)
				}
			}
		}
	}
	if n < 50 {
		t.Errorf("only %d echlab command lines found in the documents", n)
	}
	t.Logf("%d echlab command lines checked", n)
}
