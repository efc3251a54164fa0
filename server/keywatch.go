package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/internal/watch"
)

// ErrKeyReload is wrapped by the errors a KeyWatcher reports when the
// key-set directory could not be taken over; the last good set stays.
var ErrKeyReload = errors.New("server: key set not reloaded")

// KeyWatchConfig configures WatchKeys. Keys and Dir are required; the
// rest has working zero values.
type KeyWatchConfig struct {
	// Keys is the live key set the servers read on every ECH handshake
	// (Config.Keys through UsableKeys, SplitConfig.Keys). The watcher
	// replaces its entries in place (ech.KeySet.Replace), so every server
	// holding it follows.
	Keys *ech.KeySet
	// Dir is the key-set directory (ech.SaveKeySet) to follow.
	Dir string
	// Interval is how often Dir's manifest (ech.KeySetManifest) is
	// checked; 0 means watch.DefaultInterval.
	Interval time.Duration
	// Rotator, when this process also rotates Keys into Dir, is that
	// Rotator: a reload and a rotation then never interleave (a reload
	// never puts back a set older than the one in memory), and its expiry
	// timer follows the grace periods a reload brings.
	Rotator *Rotator
	// Now is the clock that decides which keys' grace has ended; nil
	// means the key set's (ech.KeySet.Now).
	Now func() time.Time
	// OnReload, when set, is called after each reload that changed the
	// set (err nil) and each that failed (err wraps ErrKeyReload).
	OnReload func(d ech.KeySetDiff, err error)
}

func (c KeyWatchConfig) populate() (KeyWatchConfig, error) {
	if c.Keys == nil || c.Dir == "" {
		return c, fmt.Errorf("%w: KeyWatchConfig needs Keys and Dir", ErrConfig)
	}
	if c.Interval < 0 {
		return c, fmt.Errorf("%w: negative key set poll interval %v", ErrConfig, c.Interval)
	}
	if c.Interval == 0 {
		c.Interval = watch.DefaultInterval
	}
	if c.Now == nil {
		c.Now = c.Keys.Now
	}
	return c, nil
}

// KeyWatcher keeps a live key set in step with its directory when another
// process rotates it (echlab keygen --rotate), with the resolver's watcher
// semantics: the manifest's stamp is polled, a changed one reloads the
// whole set, and a set caught half-written or broken is reported and
// tried again at the next poll while the last good set stays in use. Keys
// whose grace period has ended are left out of a reload.
type KeyWatcher struct {
	cfg    KeyWatchConfig
	cancel context.CancelFunc
	done   chan struct{}

	checkMu sync.Mutex                  // one Check reloads at a time
	seen    atomic.Pointer[os.FileInfo] // the manifest as of the last good Check
	// reloadMu makes each Reload's load and replace one step: without it
	// a poll that read the folder just before a rotation could replace
	// the live set after a Check that had already loaded the rotated
	// one, putting the older set back while Check's stat says it is
	// current (a config DNS publishes then rejected until the next poll).
	reloadMu sync.Mutex
}

// loadKeySet reads a key-set directory (a test delays it).
var loadKeySet = ech.LoadKeySet

// WatchKeys validates cfg and follows cfg.Dir until Close. The first poll
// always reloads, so a rotation between the caller's own load and the
// watch is not missed.
func WatchKeys(cfg KeyWatchConfig) (*KeyWatcher, error) {
	c, err := cfg.populate()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &KeyWatcher{cfg: c, cancel: cancel, done: make(chan struct{})}
	c.Keys.OnRead(w.Check)
	go func() {
		defer close(w.done)
		watch.File(ctx, filepath.Join(c.Dir, ech.KeySetManifest), c.Interval, w.poll)
	}()
	return w, nil
}

// poll reloads once and reports what happened.
func (w *KeyWatcher) poll() error {
	d, err := w.Reload()
	if w.cfg.OnReload != nil && (err != nil || !d.Empty()) {
		w.cfg.OnReload(d, err)
	}
	return err
}

// Reload reads the directory now and replaces the live set with it,
// leaving out keys whose grace has ended. Reloads run one at a time, so
// a set read earlier never replaces one read later. A set that does not load or has
// no published key (nothing to send as retry configs) is refused with an
// error wrapping ErrKeyReload, and the live set stays as it was.
func (w *KeyWatcher) Reload() (ech.KeySetDiff, error) {
	if r := w.cfg.Rotator; r != nil {
		r.mu.Lock()
		defer r.mu.Unlock()
	}
	w.reloadMu.Lock()
	defer w.reloadMu.Unlock()
	loaded, err := loadKeySet(w.cfg.Dir)
	if err != nil {
		return ech.KeySetDiff{}, fmt.Errorf("%w from %s: %w", ErrKeyReload, w.cfg.Dir, err)
	}
	loaded.Expire(w.cfg.Now())
	if _, err := loaded.ConfigList(); err != nil {
		return ech.KeySetDiff{}, fmt.Errorf("%w from %s: %w", ErrKeyReload, w.cfg.Dir, err)
	}
	d := w.cfg.Keys.Replace(loaded)
	if r := w.cfg.Rotator; r != nil && !d.Empty() {
		r.rearm()
	}
	return d, nil
}

// Check is called by the key set before every read (ech.KeySet.OnRead),
// that is on every handshake that offers ECH: it stats the
// manifest and, when the file is not the one the last Check saw, reloads
// at once. So a config that a resolver already publishes from the folder
// is never rejected because the last poll was too long ago. The unchanged
// case costs one stat. A reload that would wait for this process's own
// rotator (which holds the set while it writes the folder) is left to the
// next poll.
func (w *KeyWatcher) Check() {
	manifest := filepath.Join(w.cfg.Dir, ech.KeySetManifest)
	fi, err := os.Stat(manifest)
	if err != nil || w.unchanged(fi) {
		return
	}
	if r := w.cfg.Rotator; r != nil {
		if !r.mu.TryLock() {
			return
		}
		r.mu.Unlock()
	}
	w.checkMu.Lock()
	defer w.checkMu.Unlock()
	if w.unchanged(fi) {
		return
	}
	d, err := w.Reload()
	if err == nil {
		w.seen.Store(&fi)
	}
	if w.cfg.OnReload != nil && (err != nil || !d.Empty()) {
		w.cfg.OnReload(d, err)
	}
}

// unchanged reports whether fi is the manifest the last good Check saw:
// the same file (a rename makes a new one), size and modification time.
func (w *KeyWatcher) unchanged(fi os.FileInfo) bool {
	p := w.seen.Load()
	return p != nil && os.SameFile(*p, fi) && (*p).Size() == fi.Size() && (*p).ModTime().Equal(fi.ModTime())
}

// Close stops watching. The live set keeps its last contents.
func (w *KeyWatcher) Close() error {
	w.cfg.Keys.OnRead(nil)
	w.cancel()
	<-w.done
	return nil
}
