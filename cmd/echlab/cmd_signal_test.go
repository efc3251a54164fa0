package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/echlab/echlab/internal/pki"
)

// daemonCase is a long-running command: how to start it, the stderr line
// that says it runs, and the stop line its name gives.
type daemonCase struct {
	name  string
	ready *regexp.Regexp
	args  func(t *testing.T, dir string) []string
}

func daemonCases() []daemonCase {
	return []daemonCase{
		{"resolver", regexp.MustCompile(`^echlab resolver: (serving) `), func(t *testing.T, dir string) []string {
			zone := filepath.Join(dir, "lab.test.zone")
			if err := os.WriteFile(zone, []byte("$ORIGIN lab.test.\n$TTL 60\n@ IN SOA ns hostmaster 1 3600 600 86400 60\nwww IN A 127.0.0.1\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			return []string{"resolver", "--zone", zone, "--udp", "127.0.0.1:0", "--tcp", "127.0.0.1:0",
				"--dot", "", "--doh", "", "--doh3", "", "--doq", "", "--metrics", "", "--pki", ""}
		}},
		{"server", regexp.MustCompile(`^echlab server: https://public\.lab\.test/ \(tcp (127\.0\.0\.1:\d+)`), func(t *testing.T, dir string) []string {
			return []string{"server", "--addr", "127.0.0.1:0", "--pki", filepath.Join(dir, "pki"), "--log", ""}
		}},
		{"split", regexp.MustCompile(`^echlab split: (127\.0\.0\.1:\d+), routes `), func(t *testing.T, dir string) []string {
			return []string{"split", "--addr", "127.0.0.1:0", "--pki", filepath.Join(dir, "pki"), "--keys", filepath.Join(dir, "keys"),
				"--route", "*=127.0.0.1:1", "--log", ""}
		}},
		{"observe", regexp.MustCompile(`^echlab observe: (capturing) on lo`), func(t *testing.T, dir string) []string {
			if os.Geteuid() != 0 {
				if os.Getenv("CI") != "" {
					t.Fatal("CI runs as root and must run this test")
				}
				t.Skip("live capture needs root (or CAP_NET_RAW)")
			}
			return []string{"observe", "--iface", "lo", "--ports", "1", "--out", filepath.Join(dir, "c.pcapng")}
		}},
		{"play", regexp.MustCompile(`^echlab play: (done); holding until SIGINT or SIGTERM$`), func(t *testing.T, dir string) []string {
			if _, err := pki.LoadOrCreate(filepath.Join(dir, "pki")); err != nil {
				t.Fatal(err)
			}
			// resolver-down passes when the resolver does not answer.
			return []string{"play", "--hold", "--pki", filepath.Join(dir, "pki"), "--dns", "doh=https://127.0.0.1:1/dns-query",
				"--scenarios", "resolver-down", "--ready-timeout", "0", "--case-timeout", "5s", "--out", filepath.Join(dir, "out")}
		}},
	}
}

// TestDaemonsStopOnSignal: every long-running command says in its help
// that it runs until SIGINT or SIGTERM, and on either signal prints one
// "echlab CMD: stopping on SIGNAL" line and exits 0.
func TestDaemonsStopOnSignal(t *testing.T) {
	for _, dc := range daemonCases() {
		t.Run(dc.name, func(t *testing.T) {
			help := runCLI(t, "", time.Minute, "help", dc.name)
			if text := strings.Join(strings.Fields(help.stderr+help.stdout), " "); !strings.Contains(text, "until SIGINT or SIGTERM") {
				t.Errorf("echlab help %s does not say it runs until SIGINT or SIGTERM:\n%s", dc.name, help.stderr)
			}
			for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
				d, _, stderr := startDaemonStderr(t, dc.ready, dc.args(t, t.TempDir())...)
				if err := d.cmd.Process.Signal(sig); err != nil {
					t.Fatal(err)
				}
				code := d.wait(t, 20*time.Second)
				want := "echlab " + dc.name + ": stopping on " + sig.String()
				if code != 0 || strings.Count(stderr.String(), want) != 1 {
					t.Errorf("%s: exit %d, want 0 and one %q line:\n%s", sig, code, want, stderr.String())
				}
			}
		})
	}
}
