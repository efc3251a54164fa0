package main

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/echlab/echlab/lab"
)

func init() {
	register(command{name: "run", summary: "run the embedded lab: every component on loopback, the scenario matrix, the observer's report", run: runRun})
}

func runRun(args []string) error {
	fs := newFlags("run", "", "Start the resolver (Do53, DoT, DoH, DoH3, DoQ), the ECH servers (shared, split, HRR,\n"+
		"post-quantum, stale keys) and the baseline server in this process on loopback, run the\n"+
		"scenario matrix through an on-path observer, and write the capture, logs and report to --out.\n\n"+
		"Scenarios: "+lab.ScenarioNames()+"\n("+strings.Join(lab.NamedOnlyScenarios(), ", ")+" only when named; --h3 adds ech-shared-h3).\n"+
		"Transports: default all five for baseline and ech-shared, doh for the rest;\n"+
		lab.ScenarioDoTDiscovery+" always discovers over dot.")
	out := fs.String("out", "out", "output folder")
	keys := fs.String("keys", "", "folder of key sets to reuse (created if missing; default OUT/keys)")
	pkiDir := fs.String("pki", "", "folder of the lab CA to reuse (created if missing; default OUT/pki)")
	scen := fs.String("scenarios", "", "comma-separated scenarios (default: all but the ones run only when named)")
	trans := fs.String("transports", "", "comma-separated DNS transports: do53,dot,doh,doh3,doq or all")
	repeat := fs.Int("repeat", 1, "runs of each scenario × transport")
	capture := fs.String("capture", "auto", "auto, live (packet socket on lo: root or CAP_NET_RAW) or synth (recording relays)")
	h3 := fs.Bool("h3", false, "also run ech-shared over HTTP/3")
	quiet := fs.Bool("quiet", false, "no progress lines on stderr")
	wide := fs.Bool("wide", false, "print every column of the table (wider than 120 columns)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	if err := checkTransports(splitList(*trans), true); err != nil {
		return usageError("run", "%v", err)
	}
	cfg := lab.RunConfig{OutDir: *out, KeysDir: *keys, PKIDir: *pkiDir, Scenarios: splitList(*scen),
		Transports: splitList(*trans), Repeat: *repeat, Capture: *capture, H3: *h3, Progress: os.Stderr}
	if *quiet {
		cfg.Progress = nil
	}
	ctx, release := signalContext("run")
	defer release()
	res, err := lab.Run(ctx, cfg)
	if res != nil && res.Report != nil {
		fmt.Println()
		lab.TableOptions{Wide: *wide}.WriteGlance(os.Stdout, res.Rows, res.Capture) //nolint:errcheck // stdout
		fmt.Printf("\nReport: %s (%d files in %s)\n", strings.Join([]string{*out, lab.FileReport}, string(os.PathSeparator)), len(res.Files), *out)
	}
	if errors.Is(err, lab.ErrScenario) {
		fmt.Fprintln(os.Stderr, "echlab run:", err)
		return errUsage
	}
	return err
}

// checkTransports says which name of a --transports list is not a DNS
// transport, and lists the valid ones ("all" too when allowed).
func checkTransports(names []string, all bool) error {
	valid := strings.Join(lab.AllTransports, ",")
	if all {
		valid += " or all"
	}
	for _, n := range names {
		if !slices.Contains(lab.AllTransports, strings.ToLower(n)) && (!all || !strings.EqualFold(n, "all")) {
			return fmt.Errorf("--transports: unknown transport %q (valid: %s)", n, valid)
		}
	}
	return nil
}

// splitList splits a comma-separated flag value; "" gives nil.
func splitList(s string) []string {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
