package resolver

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"

	"github.com/echlab/echlab/ech"
)

// listenerECH hands the private keys of an ECH key set directory to the
// resolver's own encrypted listeners (DoT, DoH, DoH3, DoQ) through
// tls.Config.GetEncryptedClientHelloKeys. It rereads the directory when
// its KeySetFile changes, so the listeners follow a rotation the way the
// published HTTPS records do; a key set that fails to load keeps the last
// good keys.
type listenerECH struct {
	dir string
	log *slog.Logger

	mu    sync.Mutex
	stamp string // KeySetFile stamp of the last load attempt
	keys  []tls.EncryptedClientHelloKey
}

// newListenerECH loads dir once; a key set that does not load, or holds a
// KEM that crypto/tls does not implement, is an error.
func newListenerECH(dir string, log *slog.Logger) (*listenerECH, error) {
	l := &listenerECH{dir: dir, log: log}
	l.stamp = fileStamp(filepath.Join(dir, KeySetFile))
	keys, err := loadTLSKeys(dir)
	if err != nil {
		return nil, err
	}
	l.keys = keys
	return l, nil
}

func loadTLSKeys(dir string) ([]tls.EncryptedClientHelloKey, error) {
	ks, err := ech.LoadKeySet(dir)
	if err != nil {
		return nil, err
	}
	return ks.TLSKeys()
}

// get is the listeners' GetEncryptedClientHelloKeys.
func (l *listenerECH) get(*tls.ClientHelloInfo) ([]tls.EncryptedClientHelloKey, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if stamp := fileStamp(filepath.Join(l.dir, KeySetFile)); stamp != l.stamp {
		l.stamp = stamp
		keys, err := loadTLSKeys(l.dir)
		if err != nil {
			l.log.Warn("resolver: listener ECH keys not reloaded", "dir", l.dir, "err", err)
		} else {
			l.keys = keys
		}
	}
	return l.keys, nil
}

// publicNames lists the public_name of every key the listeners hold.
func (l *listenerECH) publicNames() []string {
	if l == nil {
		return nil
	}
	ks, err := ech.LoadKeySet(l.dir)
	if err != nil {
		return nil
	}
	var names []string
	for _, k := range ks.Keys() {
		if !slices.Contains(names, k.Config.PublicName) {
			names = append(names, k.Config.PublicName)
		}
	}
	return names
}

// startListenerECH loads the key set named by cfg.TLS.ECHKeySet; nil when
// none is named.
func startListenerECH(cfg *Config) (*listenerECH, error) {
	name := cfg.TLS.ECHKeySet
	if name == "" {
		return nil, nil
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l, err := newListenerECH(cfg.KeySets[name], log)
	if err != nil {
		return nil, fmt.Errorf("%w: tls ech_keyset %q: %w", ErrConfig, name, err)
	}
	return l, nil
}
