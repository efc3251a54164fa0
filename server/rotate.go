package server

import (
	"fmt"
	"sync"
	"time"

	"github.com/echlab/echlab/ech"
)

// RotatorConfig configures a Rotator. Keys is required; the rest has
// working zero values.
type RotatorConfig struct {
	// Keys is the live key set the servers read on every ECH handshake.
	Keys *ech.KeySet
	// Dir, when set, receives the key set (ech.SaveKeySet) after every
	// rotation, so that a resolver watching it republishes the configs.
	Dir string
	// Every rotates on a schedule; 0 rotates only when Rotate is called.
	Every time.Duration
	// Grace is how long a replaced key stays accepted. 0 means 2×Every,
	// or one hour without a schedule.
	Grace time.Duration
	// KeyOptions override what the new keys look like. A rotation
	// replaces each published key with a new one like it (same KEM, cipher
	// suites, public name, maximum name length; ech.KeySet.RotationOptions),
	// so the zero value keeps the set as it is: an X25519+X-Wing set
	// rotates to a new X25519 and a new X-Wing key. A field set here
	// replaces that part; a KEM set here gives one new key of that KEM.
	// ConfigID is ignored (the set picks free ones).
	KeyOptions ech.KeyOptions
	// Now is the clock; nil means the key set's (ech.KeySet.Now), so that
	// the Rotator and the set agree on when a grace period ends.
	Now func() time.Time
	// OnRotate, when set, is called after each scheduled rotation with
	// the new key or the error.
	OnRotate func(*ech.Key, error)
	// OnExpire, when set, is called after the expiry timer dropped keys
	// (n > 0) or failed to save the set.
	OnExpire func(n int, err error)
}

// Rotator replaces the published ECH key: the new key is published at
// once, the old ones stay accepted (not published) for the grace period
// and are then expired. Expiry runs on its own timer, set to the earliest
// RetireAt in the set, so a replaced key is dropped when its grace ends and
// not at the next rotation. Clients holding an expired config are rejected
// with retry configs and recover with them.
//
// The timer is re-armed after every Rotate and Expire and when the
// Rotator starts; a RetireAt changed on the KeySet by other code is seen
// at the next of those.
type Rotator struct {
	cfg  RotatorConfig
	mu   sync.Mutex
	kick chan struct{} // re-arm the expiry timer
	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// StartRotator validates cfg, starts the expiry timer and, with Every set,
// starts rotating on that schedule until Close.
func StartRotator(cfg RotatorConfig) (*Rotator, error) {
	if cfg.Keys == nil {
		return nil, fmt.Errorf("%w: RotatorConfig.Keys is nil", ErrConfig)
	}
	if cfg.Every < 0 || cfg.Grace < 0 {
		return nil, fmt.Errorf("%w: negative rotation period or grace", ErrConfig)
	}
	if cfg.Grace == 0 {
		cfg.Grace = time.Hour
		if cfg.Every > 0 {
			cfg.Grace = 2 * cfg.Every
		}
	}
	if cfg.Now == nil {
		cfg.Now = cfg.Keys.Now
	}
	r := &Rotator{cfg: cfg, kick: make(chan struct{}, 1), stop: make(chan struct{})}
	r.wg.Add(1)
	go r.loop()
	return r, nil
}

// minExpiryWait keeps the expiry timer from spinning when a clock that
// does not advance with real time (tests inject one) leaves a RetireAt
// due but not yet reached.
const minExpiryWait = time.Millisecond

// loop rotates on the schedule (when Every is set) and expires keys when
// the earliest grace period ends.
func (r *Rotator) loop() {
	defer r.wg.Done()
	var tick <-chan time.Time
	if r.cfg.Every > 0 {
		t := time.NewTicker(r.cfg.Every)
		defer t.Stop()
		tick = t.C
	}
	expiry := time.NewTimer(time.Hour)
	defer expiry.Stop()
	r.arm(expiry)
	for {
		select {
		case <-r.stop:
			return
		case <-tick:
			k, err := r.Rotate()
			if r.cfg.OnRotate != nil {
				r.cfg.OnRotate(k, err)
			}
		case <-r.kick:
			r.arm(expiry)
		case <-expiry.C:
			n, err := r.Expire()
			if r.cfg.OnExpire != nil && (n > 0 || err != nil) {
				r.cfg.OnExpire(n, err)
			}
			r.arm(expiry)
		}
	}
}

// arm sets the expiry timer to the earliest RetireAt of an accepted-only
// key, or stops it when no key is waiting to expire.
func (r *Rotator) arm(t *time.Timer) {
	next, ok := nextRetire(r.cfg.Keys.Entries())
	if !ok {
		t.Stop()
		return
	}
	t.Reset(max(next.Sub(r.cfg.Now()), minExpiryWait))
}

// nextRetire returns the earliest RetireAt among the keys ech.KeySet.Expire
// would drop.
func nextRetire(entries []ech.KeyEntry) (time.Time, bool) {
	var next time.Time
	for _, e := range entries {
		if e.Published || e.RetireAt.IsZero() {
			continue
		}
		if next.IsZero() || e.RetireAt.Before(next) {
			next = e.RetireAt
		}
	}
	return next, !next.IsZero()
}

// rearm asks the loop to recompute the expiry timer.
func (r *Rotator) rearm() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Rotate publishes new keys now (one like each published key, see
// RotatorConfig.KeyOptions), keeps the replaced ones for the grace period,
// drops keys whose grace has ended, and saves the set to Dir. It returns
// the most preferred new key; RotateKeys returns them all.
func (r *Rotator) Rotate() (*ech.Key, error) {
	keys, err := r.RotateKeys()
	if err != nil {
		return nil, err
	}
	return keys[0], nil
}

// RotateKeys is Rotate returning every new key, most preferred first.
func (r *Rotator) RotateKeys() ([]*ech.Key, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.cfg.Now()
	r.cfg.Keys.Expire(now)
	keys, err := r.cfg.Keys.RotateKeys(r.cfg.Keys.RotationOptions(r.cfg.KeyOptions), r.cfg.Grace, now)
	if err != nil {
		return nil, err
	}
	r.rearm()
	return keys, r.save()
}

// Expire drops the keys whose grace period has ended and saves the set
// when any went. It returns how many were dropped.
func (r *Rotator) Expire() (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.cfg.Keys.Expire(r.cfg.Now())
	if n == 0 {
		return 0, nil
	}
	return n, r.save()
}

func (r *Rotator) save() error {
	if r.cfg.Dir == "" {
		return nil
	}
	return ech.SaveKeySet(r.cfg.Dir, r.cfg.Keys)
}

// Close stops the schedule and the expiry timer.
func (r *Rotator) Close() error {
	r.once.Do(func() { close(r.stop) })
	r.wg.Wait()
	return nil
}
