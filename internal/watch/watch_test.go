package watch

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// watched runs File on a fresh file and reports each reload's view of
// the file; fail decides which contents the reload refuses.
type watched struct {
	path  string
	seen  chan string
	done  chan struct{}
	stop  context.CancelFunc
	fails func(string) bool
}

func startWatched(t *testing.T, first string, fails func(string) bool) *watched {
	t.Helper()
	w := &watched{path: filepath.Join(t.TempDir(), "keyset.json"), seen: make(chan string, 100),
		done: make(chan struct{}), fails: fails}
	w.write(t, first)
	ctx, cancel := context.WithCancel(context.Background())
	w.stop = cancel
	go func() {
		defer close(w.done)
		File(ctx, w.path, 5*time.Millisecond, func() error {
			b, _ := os.ReadFile(w.path)
			w.seen <- string(b)
			if w.fails(string(b)) {
				return errors.New("refused")
			}
			return nil
		})
	}()
	t.Cleanup(func() { cancel(); <-w.done })
	return w
}

// write replaces the file whole, by rename, as ech.SaveKeySet replaces
// its manifest: an in-place os.WriteFile could be caught truncated by a
// tick, and the reload would see an empty file.
func (w *watched) write(t *testing.T, s string) {
	t.Helper()
	tmp := w.path + ".tmp"
	if err := os.WriteFile(tmp, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, w.path); err != nil {
		t.Fatal(err)
	}
}

func (w *watched) next(t *testing.T) string {
	t.Helper()
	select {
	case s := <-w.seen:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("no reload within 5 s")
	}
	return ""
}

func (w *watched) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case s := <-w.seen:
		t.Fatalf("reloaded %q although the file did not change", s)
	case <-time.After(d):
	}
}

func TestFileReloadsOnChangeOnly(t *testing.T) {
	w := startWatched(t, "a", func(string) bool { return false })
	if got := w.next(t); got != "a" {
		t.Fatalf("first reload saw %q, want a", got)
	}
	w.quiet(t, 100*time.Millisecond) // 20 ticks, no change
	w.write(t, "bb")
	if got := w.next(t); got != "bb" {
		t.Fatalf("reload after a change saw %q, want bb", got)
	}
	w.quiet(t, 100*time.Millisecond)
}

func TestFileRetriesFailedReload(t *testing.T) {
	w := startWatched(t, "ok", func(s string) bool { return s == "broken" })
	w.next(t)
	w.write(t, "broken")
	for range 3 { // retried at every tick although the file stays the same
		if got := w.next(t); got != "broken" {
			t.Fatalf("saw %q, want broken", got)
		}
	}
	w.write(t, "fixed")
	for {
		if got := w.next(t); got == "fixed" {
			break
		}
	}
	w.quiet(t, 100*time.Millisecond)
}

func TestFileStopsWithContext(t *testing.T) {
	w := startWatched(t, "a", func(string) bool { return false })
	w.next(t)
	w.stop()
	select {
	case <-w.done:
	case <-time.After(5 * time.Second):
		t.Fatal("File did not return after its context ended")
	}
}

func TestStamp(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if Stamp(p) != "missing" {
		t.Errorf("missing file: %q", Stamp(p))
	}
	os.WriteFile(p, []byte("abc"), 0o644) //nolint:errcheck
	fi, _ := os.Stat(p)
	s1 := Stamp(p)
	// Same size and modification time, other contents: still a change.
	os.WriteFile(p, []byte("abd"), 0o644)     //nolint:errcheck
	os.Chtimes(p, fi.ModTime(), fi.ModTime()) //nolint:errcheck
	if s2 := Stamp(p); s2 == s1 {
		t.Errorf("rewrite with the same size and time kept stamp %q", s1)
	}
}

// TestStampIsOneFile: while another goroutine replaces the file by rename
// with contents of two sizes in turn, every stamp pairs the size with the
// contents of the same file (a stamp that stat'ed the old file and read
// the new one made File reload the new one twice: TestFileReloadsOnChangeOnly
// failed so in CI).
func TestStampIsOneFile(t *testing.T) {
	w := &watched{path: filepath.Join(t.TempDir(), "keyset.json")}
	w.write(t, "a")
	sizeOf := map[string]string{}
	for _, c := range []string{"a", "bb"} {
		sizeOf[fmt.Sprintf("%x", sha256.Sum256([]byte(c)))] = fmt.Sprint(len(c))
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			tmp := fmt.Sprintf("%s.%d", w.path, i%2)
			if err := os.WriteFile(tmp, []byte([]string{"a", "bb"}[i%2]), 0o644); err != nil {
				t.Error(err)
				return
			}
			if err := os.Rename(tmp, w.path); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	defer func() { close(stop); <-done }()
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); {
		f := strings.Split(Stamp(w.path), "/")
		if len(f) != 3 {
			t.Fatalf("stamp %q", strings.Join(f, "/"))
		}
		if sizeOf[f[2]] != f[0] {
			t.Fatalf("stamp %q: size %s with the contents of a file of size %s", strings.Join(f, "/"), f[0], sizeOf[f[2]])
		}
	}
}
