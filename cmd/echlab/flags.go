package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// errUsage means the flags were wrong and the usage has been printed.
var errUsage = errors.New("usage")

// errHelp is returned when -h was asked for; main exits 0 for it.
var errHelp = errors.New("help")

// reportedError is an error the command has already printed: main exits
// 1 without printing it again.
type reportedError struct{ err error }

func (e reportedError) Error() string { return e.err.Error() }
func (e reportedError) Unwrap() error { return e.err }

// newFlags makes a FlagSet for a subcommand that prints its usage to
// stderr and returns errors instead of exiting.
func newFlags(name, argsHelp, summary string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "Usage: echlab %s [flags] %s\n\n%s\n\nFlags:\n", name, argsHelp, summary)
		printFlags(os.Stderr, fs)
	}
	return fs
}

// printFlags prints the flags of fs as flag.PrintDefaults does, but in
// their double-dash form (--name) and without the hidden aliases.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	var b bytes.Buffer
	out := fs.Output()
	fs.SetOutput(&b)
	fs.PrintDefaults()
	fs.SetOutput(out)
	hidden := false
	sc := bufio.NewScanner(&b)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "  -"); ok {
			name, _, _ := strings.Cut(rest, " ")
			name, _, _ = strings.Cut(name, "\t")
			hidden = strings.HasPrefix(fs.Lookup(name).Usage, hiddenUsage)
			line = "  --" + rest
		}
		if !hidden {
			fmt.Fprintln(w, line)
		}
	}
}

// hiddenUsage starts the usage of a flag printFlags leaves out: an old
// spelling still accepted, not documented.
const hiddenUsage = "(hidden) "

// aliasValue is a hidden flag that sets another flag of the same set: an
// old spelling still accepted but not shown in the usage.
type aliasValue struct {
	fs *flag.FlagSet
	to string
}

func (a aliasValue) String() string {
	if a.fs == nil {
		return ""
	}
	return a.fs.Lookup(a.to).Value.String()
}

func (a aliasValue) Set(v string) error { return a.fs.Set(a.to, v) }

// alias accepts --old as a hidden spelling of the flag --to.
func alias(fs *flag.FlagSet, old, to string) {
	fs.Var(aliasValue{fs: fs, to: to}, old, hiddenUsage+"old spelling of --"+to)
}

// parse parses args and maps -h and bad flags to errUsage (help is not an
// error for the exit status when asked for explicitly).
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return errUsage
	}
	return nil
}

// usageError prints one line, "echlab CMD: message", and returns errUsage
// (exit status 2) for flags that are well formed but do not fit together.
func usageError(cmd, format string, args ...any) error {
	fmt.Fprintf(os.Stderr, "echlab %s: %s\n", cmd, fmt.Sprintf(format, args...))
	return errUsage
}
