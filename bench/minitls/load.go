package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/internal/pki"
)

// load runs the clients and prints one line of figures.
func load(args []string) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	addr := fs.String("addr", "", "server address")
	pkiDir := fs.String("pki", "pki", "lab CA folder (its ca.crt is trusted)")
	keys := fs.String("keys", "", "ECH key set folder whose published configs the clients use; empty is no ECH")
	name := fs.String("name", "secret.lab.test", "server name (the inner one with ECH)")
	conns := fs.Int("conns", 8, "concurrent clients")
	dur := fs.Duration("duration", 3*time.Second, "how long to run")
	pids := fs.String("pids", "", "comma-separated server process ids whose CPU is counted")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := clientConfig(*pkiDir, *keys, *name)
	if err != nil {
		return err
	}
	pidList, err := parsePids(*pids)
	if err != nil {
		return err
	}
	r, err := run(*addr, cfg, *keys != "", *conns, *dur, pidList)
	if err != nil {
		return err
	}
	fmt.Printf("handshakes=%d seconds=%.3f rate=%.0f cpu_us=%.0f errors=%d\n",
		r.n, r.secs, float64(r.n)/r.secs, r.cpuPerHandshake(), r.errs)
	return nil
}

// clientConfig trusts the lab CA and, with a key folder, offers its
// published ECHConfigList. Sessions are never resumed.
func clientConfig(pkiDir, keys, name string) (*tls.Config, error) {
	ca, err := pki.Load(pkiDir)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{ServerName: name, RootCAs: ca.Pool(), SessionTicketsDisabled: true}
	if keys != "" {
		ks, err := ech.LoadKeySet(keys)
		if err != nil {
			return nil, err
		}
		if cfg.EncryptedClientHelloConfigList, err = ks.ConfigList(); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

// result is one load run.
type result struct {
	n, errs int64
	secs    float64
	cpu     time.Duration // server CPU (user + system) during the run
}

func (r result) cpuPerHandshake() float64 {
	if r.n == 0 {
		return 0
	}
	return float64(r.cpu.Microseconds()) / float64(r.n)
}

// run handshakes with conns clients for dur; a handshake whose ECH
// acceptance is not wantECH counts as an error.
func run(addr string, cfg *tls.Config, wantECH bool, conns int, dur time.Duration, pids []int) (result, error) {
	var n, errs atomic.Int64
	var firstErr atomic.Value
	cpu0, err := cpuOf(pids)
	if err != nil {
		return result{}, err
	}
	start := time.Now()
	deadline := start.Add(dur)
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if err := handshake(addr, cfg, wantECH); err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	cpu1, err := cpuOf(pids)
	if err != nil {
		return result{}, err
	}
	if e, ok := firstErr.Load().(error); ok {
		fmt.Fprintln(os.Stderr, "minitls: first error:", e)
	}
	return result{n: n.Load(), errs: errs.Load(), secs: secs, cpu: cpu1 - cpu0}, nil
}

// handshake dials, runs a full handshake and closes with close_notify.
func handshake(addr string, cfg *tls.Config, wantECH bool) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	tc := tls.Client(c, cfg)
	defer tc.Close()
	if err := tc.Handshake(); err != nil {
		return err
	}
	if got := tc.ConnectionState().ECHAccepted; got != wantECH {
		return fmt.Errorf("ECHAccepted = %v, want %v", got, wantECH)
	}
	return nil
}

func parsePids(s string) ([]int, error) {
	var out []int
	for _, f := range splitComma(s) {
		p, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("--pids: %w", err)
		}
		out = append(out, p)
	}
	return out, nil
}

func splitComma(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// clockTick is Linux's USER_HZ, the unit of utime and stime in /proc.
const clockTick = 10 * time.Millisecond

// cpuOf sums utime+stime of the processes, from /proc/PID/stat.
func cpuOf(pids []int) (time.Duration, error) {
	var total time.Duration
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return 0, err
		}
		// Fields after the command name, which may hold spaces, in ( ).
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			return 0, errors.New("unexpected /proc stat format")
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 13 {
			return 0, errors.New("short /proc stat")
		}
		ut, err1 := strconv.ParseInt(f[11], 10, 64)
		st, err2 := strconv.ParseInt(f[12], 10, 64)
		if err1 != nil || err2 != nil {
			return 0, errors.New("bad utime/stime in /proc stat")
		}
		total += time.Duration(ut+st) * clockTick
	}
	return total, nil
}
