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
	// Keys is the live key set the servers read on every handshake.
	Keys *ech.KeySet
	// Dir, when set, receives the key set (ech.SaveKeySet) after every
	// rotation, so that a resolver watching it republishes the configs.
	Dir string
	// Every rotates on a schedule; 0 rotates only when Rotate is called.
	Every time.Duration
	// Grace is how long a replaced key stays accepted. 0 means 2×Every,
	// or one hour without a schedule.
	Grace time.Duration
	// KeyOptions make the new keys (ConfigID is chosen free by the set).
	KeyOptions ech.KeyOptions
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OnRotate, when set, is called after each scheduled rotation with
	// the new key or the error.
	OnRotate func(*ech.Key, error)
}

// Rotator replaces the published ECH key: the new key is published at
// once, the old ones stay accepted (not published) for the grace period
// and are then expired. Clients holding an expired config are rejected
// with retry configs and recover with them.
type Rotator struct {
	cfg  RotatorConfig
	mu   sync.Mutex
	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// StartRotator validates cfg and, with Every set, starts rotating on that
// schedule until Close.
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
		cfg.Now = time.Now
	}
	r := &Rotator{cfg: cfg, stop: make(chan struct{})}
	if cfg.Every > 0 {
		r.wg.Add(1)
		go r.loop()
	}
	return r, nil
}

func (r *Rotator) loop() {
	defer r.wg.Done()
	t := time.NewTicker(r.cfg.Every)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			k, err := r.Rotate()
			if r.cfg.OnRotate != nil {
				r.cfg.OnRotate(k, err)
			}
		}
	}
}

// Rotate publishes a new key now, keeps the replaced ones for the grace
// period, drops keys whose grace has ended, and saves the set to Dir.
func (r *Rotator) Rotate() (*ech.Key, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.cfg.Now()
	r.cfg.Keys.Expire(now)
	k, err := r.cfg.Keys.Rotate(r.cfg.KeyOptions, r.cfg.Grace, now)
	if err != nil {
		return nil, err
	}
	return k, r.save()
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

// Close stops the schedule.
func (r *Rotator) Close() error {
	r.once.Do(func() { close(r.stop) })
	r.wg.Wait()
	return nil
}
