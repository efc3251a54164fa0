package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
		lab.ScenarioDoTDiscovery+" always discovers over dot.\n\n"+
		"With --adversary, the observer acts: each client row ("+lab.GridRowNames()+")\n"+
		"connects once against each column of policies, and grid.md says per cell: connected with ECH, in the\n"+
		"clear (fail-open), GREASE, or failed closed; where the true name leaked; what RFC 9849/9848 expect.\n"+
		"--scenarios censor is the same as --adversary all.\n"+
		"Policies: block-sni NAME [drop|rst], block-ech [drop|rst], block-ech-public NAME [drop|rst],\n"+
		"block-ech-size [SIZES] [drop|rst], rst-after-hello, strip-ech, drop-https-rr, poison NAME ADDR,\n"+
		"block-doh [ADDR|NAME] [drop|rst], drop-udp [PORT]. Example:\n"+
		"  echlab run --adversary 'block-ech,strip-ech,strip-ech+block-doh'")
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
	adv := fs.String("adversary", "", "run the adversary grid instead of the scenarios: comma-separated columns of policies\n"+
		"(join policies acting together with +), or all (alias censor) for every policy; see echlab help run")
	gridRows := fs.String("grid-rows", "", "with --adversary: comma-separated client rows (default all: "+lab.GridRowNames()+")")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	if slices.ContainsFunc(splitList(*scen), func(n string) bool { return strings.EqualFold(n, "censor") }) {
		// The censor family is the adversary grid with every policy.
		if len(splitList(*scen)) > 1 || *adv != "" {
			return usageError("run", "--scenarios censor runs the adversary grid (--adversary all): name it alone")
		}
		*adv = "all"
	}
	if *adv != "" {
		return runGrid(*adv, *gridRows, *out, *keys, *pkiDir, *quiet)
	}
	if *gridRows != "" {
		return usageError("run", "--grid-rows needs --adversary")
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

// runGrid is echlab run --adversary: the grid of client rows × adversary
// columns, printed as a table and written to --out.
func runGrid(spec, rows, out, keys, pkiDir string, quiet bool) error {
	cols, err := lab.ParseGridColumns(spec)
	if err != nil {
		return usageError("run", "--adversary: %v", err)
	}
	cfg := lab.GridConfig{OutDir: out, KeysDir: keys, PKIDir: pkiDir, Columns: cols, Rows: splitList(rows), Progress: os.Stderr}
	if quiet {
		cfg.Progress = nil
	}
	ctx, release := signalContext("run")
	defer release()
	res, err := lab.RunGrid(ctx, cfg)
	if errors.Is(err, lab.ErrUnknownGridRow) {
		return usageError("run", "--grid-rows: %v", err)
	}
	if res != nil {
		fmt.Println()
		lab.WriteGridText(os.Stdout, res) //nolint:errcheck // stdout
		fmt.Printf("\nGrid: %s (and %s, %s; the flows with the adversary's actions in %s)\n",
			filepath.Join(out, lab.FileGridMD), lab.FileGridJSON, lab.FileAdversary, lab.FileCompareMD)
	}
	return err
}
