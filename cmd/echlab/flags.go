package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
)

// errUsage means the flags were wrong and the usage has been printed.
var errUsage = errors.New("usage")

// newFlags makes a FlagSet for a subcommand that prints its usage to
// stderr and returns errors instead of exiting.
func newFlags(name, argsHelp, summary string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "Usage: echlab %s [flags] %s\n\n%s\n\nFlags:\n", name, argsHelp, summary)
		fs.PrintDefaults()
	}
	return fs
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

// errHelp is returned when -h was asked for; main exits 0 for it.
var errHelp = errors.New("help")
