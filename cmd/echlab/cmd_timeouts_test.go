package main

import (
	"strings"
	"testing"
	"time"

	"github.com/echlab/echlab/resolver"
)

// TestResolverTimeoutFlags: -idle-timeout and -read-timeout reach the
// resolver config; unset, they leave the listeners' defaults.
func TestResolverTimeoutFlags(t *testing.T) {
	fs, f := newResolverFlags()
	if err := parse(fs, []string{"-idle-timeout", "2s", "-read-timeout", "300ms"}); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := f.toConfig(fs)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.IdleTimeout != resolver.Duration(2*time.Second) || cfg.ReadTimeout != resolver.Duration(300*time.Millisecond) {
		t.Errorf("timeouts %v %v", cfg.IdleTimeout, cfg.ReadTimeout)
	}
	fs, f = newResolverFlags()
	parse(fs, nil)
	if cfg, _, _ := f.toConfig(fs); cfg.IdleTimeout != 0 || cfg.ReadTimeout != 0 {
		t.Errorf("unset timeouts %v %v", cfg.IdleTimeout, cfg.ReadTimeout)
	}
}

// TestTimeoutFlagsInHelp: both daemons document their timeout flags and
// defaults.
func TestTimeoutFlagsInHelp(t *testing.T) {
	for cmd, want := range map[string][]string{
		"server":   {"-idle-timeout", "(default 1m0s)", "-read-timeout", "(default 10s)"},
		"resolver": {"-idle-timeout", "DoH and DoH3 60s", "-read-timeout", "(0: 10s)"},
	} {
		r := runCLI(t, "", time.Minute, "help", cmd)
		out := r.stdout + r.stderr
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("help %s lacks %q:\n%s", cmd, w, out)
			}
		}
	}
}
