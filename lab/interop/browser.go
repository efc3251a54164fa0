package interop

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Browser is one browser the suite drives.
type Browser struct {
	Name string // "chromium" or "firefox"
	Path string // the executable
	// setup prepares a fresh profile in dir for a case and returns the
	// command line (after the executable) and extra environment.
	setup func(l *Lab, c Case, dir string) (args, env []string, err error)
	// h3Required says whether a failure of the h3 case is a failure (true)
	// or recorded as "not supported".
	h3Required bool
	// keylogECH says whether its SSLKEYLOGFILE holds ECH_SECRET and
	// ECH_CONFIG lines (NSS does, BoringSSL does not): checkKeylog then
	// requires them to open its ECH flows.
	keylogECH bool
}

// browsers are the known browsers, by name: the Debian packages'
// executables.
var browsers = map[string]Browser{
	"chromium": {Name: "chromium", Path: "chromium", setup: chromiumSetup},
	"firefox":  {Name: "firefox", Path: "firefox-esr", setup: firefoxSetup, h3Required: true, keylogECH: true},
}

// BrowserNames are the names Config.Browsers accepts, in run order.
var BrowserNames = []string{"chromium", "firefox"}

// version returns the browser's --version line.
func (b Browser) version(dir string) string {
	cmd := exec.Command("timeout", "30s", b.Path, "--version")
	cmd.Env = append(os.Environ(), "HOME="+dir)
	out, err := cmd.Output()
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}

// runOutcome is what one browser process did.
type runOutcome struct {
	Duration time.Duration
	ExitCode int
	TimedOut bool
}

// run starts the browser under timeout(1) in its own process group, with
// stdout and stderr saved in dir, and waits at most limit (plus a kill
// grace). Leftover processes of the group are killed afterwards.
func (b Browser) run(dir string, args, env []string, limit time.Duration) (runOutcome, error) {
	stdout, err := os.Create(filepath.Join(dir, "stdout.log"))
	if err != nil {
		return runOutcome{}, fmt.Errorf("interop: %w", err)
	}
	defer stdout.Close()
	stderr, err := os.Create(filepath.Join(dir, "stderr.log"))
	if err != nil {
		return runOutcome{}, fmt.Errorf("interop: %w", err)
	}
	defer stderr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), limit+15*time.Second)
	defer cancel()
	secs := strconv.Itoa(int(limit.Seconds())) + "s"
	cmd := exec.CommandContext(ctx, "timeout", append([]string{"-k", "5s", secs, b.Path}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr, cmd.Dir = stdout, stderr, dir
	ownGroup(cmd)
	start := time.Now()
	err = cmd.Run()
	o := runOutcome{Duration: time.Since(start)}
	killGroup(cmd)
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		o.ExitCode = exit.ExitCode()
		o.TimedOut = o.ExitCode == 124 || o.ExitCode == 137 || ctx.Err() != nil
	default:
		return o, fmt.Errorf("%w: %s: %v", ErrBrowser, b.Path, err)
	}
	return o, nil
}

// trustCA makes an NSS database in dbDir (sql: format, empty password)
// that trusts the lab CA for TLS servers.
func trustCA(dbDir, caFile string) error {
	if err := os.MkdirAll(dbDir, 0o700); err != nil {
		return fmt.Errorf("interop: %w", err)
	}
	for _, args := range [][]string{
		{"-N", "-d", "sql:" + dbDir, "--empty-password"},
		{"-A", "-d", "sql:" + dbDir, "-t", "C,,", "-n", "echlab", "-i", caFile},
	} {
		if out, err := exec.Command("certutil", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("%w: certutil %s: %v: %s", ErrBrowser, args[0], err, out)
		}
	}
	return nil
}
