package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/echlab/echlab/lab/adversary"
	"github.com/echlab/echlab/lab/intercept"
)

// A bad --adversary or --intercept stops observe before it captures
// anything, with the adversary (or intercept) package's error.
func TestObserveBadAdversary(t *testing.T) {
	for _, tc := range []struct {
		args []string
		is   error
		msg  string
	}{
		{[]string{"--adversary", "bogus"}, adversary.ErrUnknownKind, `adversary: spec "bogus": unknown kind "bogus"`},
		{[]string{"--adversary", "block-sni"}, adversary.ErrArgCount, `block-sni`},
		{[]string{"--adversary", "block-ech rst"}, nil, "--adversary needs --intercept"},
		{[]string{"--adversary", "block-ech rst", "--intercept", "https/shared=sctp/10.203.1.10:443"}, intercept.ErrTarget, `protocol "sctp"`},
	} {
		out := filepath.Join(t.TempDir(), "c.pcapng")
		err := runObserve(append([]string{"--iface", "lo", "--out", out}, tc.args...))
		if err == nil || (tc.is != nil && !errors.Is(err, tc.is)) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("observe %q: %v, want %v mentioning %q", tc.args, err, tc.is, tc.msg)
		}
		if _, serr := os.Stat(out); serr == nil {
			t.Errorf("observe %q: created %s before failing", tc.args, out)
		}
	}
	r := runCLI(t, "", time.Minute, "observe", "--iface", "lo", "--adversary", "bogus")
	if r.code != 1 || !strings.Contains(r.stderr, `echlab: adversary: spec "bogus": unknown kind "bogus" (known: block-sni`) {
		t.Errorf("echlab observe --adversary bogus: exit %d, stderr %q", r.code, r.stderr)
	}
}
