package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/lab/adversary"
	"github.com/echlab/echlab/lab/capture"
	"github.com/echlab/echlab/lab/intercept"
)

func init() {
	register(command{name: "observe", summary: "observer role: live capture on an interface to pcapng until signalled; archive ECH keys", run: runObserve})
}

type observeFlags struct {
	iface, out, ports, ready, until, archive string
	keys                                     listFlag
	poll                                     time.Duration
	onPath                                   onPathFlags
}

func runObserve(args []string) error {
	fs := newFlags("observe", "", "Capture the packets of --iface (a packet socket: root or CAP_NET_RAW) into a pcapng\n"+
		"file until SIGINT or SIGTERM, or until the --until file appears. With --keys and --archive it\n"+
		"also keeps every ECH key the key set folders held during the capture (they rotate and\n"+
		"drop old keys), so that 'echlab compare --keys ARCHIVE' can open every ECH flow.\n"+
		"With --adversary it also acts on the traffic of its network namespace (CAP_NET_ADMIN): nftables\n"+
		"rules send the connections and datagrams to the --intercept destinations through relays that\n"+
		"apply the policies; their decisions go to --adversary-log, the client's leg to --client-capture.\n"+
		"The rules are removed on exit. See lab/docker/README.md.")
	f := &observeFlags{}
	fs.StringVar(&f.iface, "iface", "eth0", "interface to capture on")
	fs.StringVar(&f.out, "out", "capture.pcapng", "pcapng file to write")
	fs.StringVar(&f.ports, "ports", "", "comma-separated TCP/UDP ports to keep (default all)")
	fs.StringVar(&f.ready, "ready", "", "create this file once the capture runs")
	fs.StringVar(&f.until, "until", "", "stop when this file appears")
	fs.Var(&f.keys, "keys", "ECH key set folder to archive (repeatable)")
	fs.StringVar(&f.archive, "archive", "", "key set folder (0700, keys 0600) receiving every key seen in --keys")
	fs.DurationVar(&f.poll, "poll", 500*time.Millisecond, "how often --keys and --until are checked")
	f.onPath.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 || f.poll <= 0 || (len(f.keys) > 0) != (f.archive != "") {
		fs.Usage()
		return errUsage
	}
	var ports []int
	for _, p := range splitList(f.ports) {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("observe: bad port %q", p)
		}
		ports = append(ports, n)
	}
	pols, targets, err := f.onPath.parse()
	if err != nil {
		return err
	}
	return f.run(ports, pols, targets)
}

func (f *observeFlags) run(ports []int, pols []adversary.Policy, targets []intercept.Target) error {
	// Catch SIGINT/SIGTERM before announcing the capture, so that a signal
	// sent as soon as the line (or the --ready file) appears still stops
	// the capture cleanly and flushes it.
	ctx, release := signalContext("observe")
	defer release()
	out, err := os.Create(f.out)
	if err != nil {
		return err
	}
	defer out.Close()
	stop, err := capture.StartLiveCapture(f.iface, ports, out)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "echlab observe: capturing on %s into %s\n", f.iface, f.out)
	var op *onPath
	if pols != nil {
		if op, err = f.onPath.start(pols, targets); err != nil {
			return errors.Join(err, stop())
		}
	}
	if f.ready != "" {
		if err := os.WriteFile(f.ready, []byte(f.iface+"\n"), 0o644); err != nil {
			return errors.Join(err, op.stop(), stop())
		}
	}
	arch := &keyArchive{dir: f.archive, seen: map[string]bool{}, set: &ech.KeySet{}}
	tick := time.NewTicker(f.poll)
	defer tick.Stop()
	var archErr error
	for done := false; !done; {
		if e := arch.add(f.keys); e != nil {
			archErr = e
		}
		if e := op.flush(); e != nil {
			fmt.Fprintln(os.Stderr, "echlab observe: warning: adversary log:", e)
		}
		select {
		case <-ctx.Done():
			done = true
		case <-tick.C:
			if _, err := os.Stat(f.until); f.until != "" && err == nil {
				done = true
			}
		}
	}
	err = errors.Join(op.stop(), stop(), out.Sync())
	if e := arch.add(f.keys); e != nil {
		archErr = e
	}
	if info, serr := out.Stat(); serr == nil {
		fmt.Fprintf(os.Stderr, "echlab observe: wrote %s (%d bytes); %d ECH keys archived\n", f.out, info.Size(), len(arch.seen))
	}
	if archErr != nil {
		// A key set caught mid-rotation is read again at the next poll;
		// only the last error is worth a warning, never a failed capture.
		fmt.Fprintln(os.Stderr, "echlab observe: warning: key archive:", archErr)
	}
	return err
}

// keyArchive accumulates the keys of rotating key set folders.
type keyArchive struct {
	dir  string
	seen map[string]bool // config id + public key
	set  *ech.KeySet
}

// add reads every folder and saves the archive when a new key showed up.
// A folder caught mid-rotation is read again at the next poll.
func (a *keyArchive) add(dirs []string) error {
	var errs []error
	fresh := false
	for _, d := range dirs {
		ks, err := ech.LoadKeySet(d)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, k := range ks.All() {
			id := fmt.Sprintf("%d/%x", k.Config.ConfigID, k.Config.PublicKey)
			if !a.seen[id] {
				a.seen[id], fresh = true, true
				a.set.Add(k, true)
			}
		}
	}
	if fresh {
		errs = append(errs, ech.SaveKeySet(a.dir, a.set))
	}
	return errors.Join(errs...)
}
