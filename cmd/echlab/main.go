// Command echlab is the lab's single binary: each subcommand parses its
// flags and calls a library package.
package main

import (
	"errors"
	"fmt"
	"os"
	"sort"
)

// command is one subcommand. Each lives in its own file and registers
// itself with register in an init function.
type command struct {
	name    string
	summary string
	run     func(args []string) error
}

var commands = map[string]command{}

func register(c command) { commands[c.name] = c }

func main() {
	if len(os.Args) < 2 {
		usage(os.Stderr)
		os.Exit(2)
	}
	name, args := os.Args[1], os.Args[2:]
	if name == "help" || name == "-h" || name == "--help" {
		if len(args) > 0 {
			if c, ok := commands[args[0]]; ok {
				os.Exit(exitCode(c.run([]string{"-h"})))
			}
		}
		usage(os.Stdout)
		return
	}
	c, ok := commands[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "echlab: unknown command %q\n\n", name)
		usage(os.Stderr)
		os.Exit(2)
	}
	os.Exit(exitCode(c.run(args)))
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if err == errHelp {
		return 0
	}
	if err == errUsage {
		return 2
	}
	var done reportedError
	if errors.As(err, &done) {
		return 1
	}
	fmt.Fprintln(os.Stderr, "echlab:", err)
	return 1
}

func usage(w *os.File) {
	fmt.Fprintln(w, "echlab — a lab for TLS Encrypted Client Hello and its DNS side")
	fmt.Fprintln(w, "\nUsage: echlab COMMAND [flags] [args]\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-12s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'echlab help COMMAND' or 'echlab COMMAND --help' for a command's flags.")
}
