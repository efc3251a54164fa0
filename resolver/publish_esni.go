package resolver

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"path/filepath"
	"time"

	"github.com/echlab/echlab/ech"
	"github.com/miekg/dns"
)

// ESNIPublishRule says that the TXT record _esni.NAME carries the ESNIKeys
// of an ESNI key set, base64-encoded (draft-ietf-tls-esni-02 §4.1): how
// legacy ESNI clients found the keys of a server.
type ESNIPublishRule struct {
	Name   string `json:"name"`          // the server's host name, e.g. "secret.lab.test."
	KeySet string `json:"keyset"`        // a key of Config.ESNIKeySets
	TTL    uint32 `json:"ttl,omitempty"` // of the TXT record; 0 means 60
}

// Owner returns the owner name of the TXT record the rule publishes.
func (r ESNIPublishRule) Owner() string { return "_esni." + dns.CanonicalName(r.Name) }

// esniState is the ESNI part of a Publisher: rules and the raw ESNIKeys
// published per key set.
type esniState struct {
	rules []ESNIPublishRule
	keys  map[string][]byte
}

// esniKeySetFile is the file of an ESNI key directory whose changes mean
// that the keys were rotated.
const esniKeySetFile = ech.ESNIKeyFile

// loadESNIKeySet is the loader of ESNI key directories: the raw ESNIKeys
// of the key set saved in dir by ech.SaveESNIKeys.
func loadESNIKeySet(dir string) ([]byte, error) {
	set, err := ech.LoadESNIKeys(dir)
	if err != nil {
		return nil, err
	}
	return set.Keys.Raw, nil
}

// checkESNIKeys refuses bytes that are not one ESNIKeys structure with a
// good checksum.
func checkESNIKeys(keySet string, raw []byte) error {
	k, err := ech.ParseESNIKeys(raw)
	if err == nil {
		err = k.CheckChecksum()
	}
	if err != nil {
		return fmt.Errorf("%w: ESNI key set %q: %w", ErrPublish, keySet, err)
	}
	return nil
}

// PublishESNI adds ESNI rules and the ESNIKeys of their key sets (keys maps
// a key set name to its raw ESNIKeys) and serves the result. A rule naming
// an unknown key set, an owner in no zone or under a CNAME, or invalid
// ESNIKeys are refused and nothing changes.
func (p *Publisher) PublishESNI(rules []ESNIPublishRule, keys map[string][]byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := esniState{keys: map[string][]byte{}}
	for name, raw := range keys {
		if err := checkESNIKeys(name, raw); err != nil {
			return err
		}
		st.keys[name] = append([]byte(nil), raw...)
	}
	for _, r := range rules {
		if err := p.checkESNIRule(r, st.keys); err != nil {
			return err
		}
		st.rules = append(st.rules, r)
	}
	p.esni = st
	return p.serve()
}

func (p *Publisher) checkESNIRule(r ESNIPublishRule, keys map[string][]byte) error {
	if _, ok := keys[r.KeySet]; !ok {
		return fmt.Errorf("%w: ESNI rule for %s names unknown key set %q", ErrPublish, r.Name, r.KeySet)
	}
	if _, ok := dns.IsDomainName(r.Name); !ok || r.Name == "" || r.Name == "." {
		return fmt.Errorf("%w: ESNI rule: %q is not a domain name", ErrPublish, r.Name)
	}
	_, err := p.ownerZone(r.Owner())
	return err
}

// UpdateESNI publishes new ESNIKeys for a key set. When they differ from
// the published ones, the zones holding the key set's TXT records get a
// new serial. Invalid ESNIKeys are refused and the old ones stay.
func (p *Publisher) UpdateESNI(keySet string, raw []byte) error {
	if err := checkESNIKeys(keySet, raw); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	old, ok := p.esni.keys[keySet]
	if !ok {
		return fmt.Errorf("%w: unknown ESNI key set %q", ErrPublish, keySet)
	}
	if bytes.Equal(old, raw) {
		return nil
	}
	p.esni.keys[keySet] = append([]byte(nil), raw...)
	var owners []string
	for _, r := range p.esni.rules {
		if r.KeySet == keySet {
			owners = append(owners, r.Owner())
		}
	}
	return p.republish(owners, "resolver: published new ESNI keys", keySet, len(raw))
}

// buildESNI returns cur (a zone derived from base zone z) with the TXT
// record of every ESNI rule whose owner is in z. The caller holds mu.
func (p *Publisher) buildESNI(z, cur *Zone) *Zone {
	for _, r := range p.esni.rules {
		owner := r.Owner()
		if zoneFor(p.base, owner) != z {
			continue
		}
		cur = cur.with(owner, dns.TypeTXT, []dns.RR{esniTXT(r, p.esni.keys[r.KeySet])}, p.serials[z.Origin])
	}
	return cur
}

// esniTXT makes the TXT record of a rule: the base64 ESNIKeys, split in
// character-strings of at most 255 octets.
func esniTXT(r ESNIPublishRule, raw []byte) dns.RR {
	text := base64.StdEncoding.EncodeToString(raw)
	var parts []string
	for len(text) > 255 {
		parts, text = append(parts, text[:255]), text[255:]
	}
	parts = append(parts, text)
	return &dns.TXT{Hdr: publishedHeader(r.Owner(), dns.TypeTXT, r.TTL), Txt: parts}
}

// WatchESNI polls the ESNI key directory dir every interval until ctx
// ends, and publishes the key set again when its esniKeySetFile changes.
// A key set that fails to load is logged and retried at the next poll;
// the last good keys stay published.
func (p *Publisher) WatchESNI(ctx context.Context, keySet, dir string, interval time.Duration) {
	watchFile(ctx, filepath.Join(dir, esniKeySetFile), interval, func() error {
		raw, err := loadESNIKeySet(dir)
		if err == nil {
			err = p.UpdateESNI(keySet, raw)
		}
		if err != nil {
			p.log.Warn("resolver: ESNI keys not republished", "keyset", keySet, "dir", dir, "err", err)
		}
		return err
	})
}

// validateESNI checks the ESNI part of a configuration.
func (c *Config) validateESNI() error {
	for name, dir := range c.ESNIKeySets {
		if name == "" || dir == "" {
			return fmt.Errorf("%w: ESNI key set %q has no name or directory", ErrConfig, name)
		}
	}
	for _, r := range c.PublishESNI {
		if _, ok := c.ESNIKeySets[r.KeySet]; !ok {
			return fmt.Errorf("%w: ESNI publish rule for %s names unknown ESNI key set %q", ErrConfig, r.Name, r.KeySet)
		}
	}
	return nil
}

// startESNI loads the ESNI key sets, publishes them and starts their
// watchers.
func (r *Running) startESNI(ctx context.Context, cfg *Config) error {
	if len(cfg.ESNIKeySets) == 0 && len(cfg.PublishESNI) == 0 {
		return nil
	}
	keys := map[string][]byte{}
	for name, dir := range cfg.ESNIKeySets {
		raw, err := loadESNIKeySet(dir)
		if err != nil {
			return fmt.Errorf("%w: ESNI key set %q in %s: %w", ErrPublish, name, dir, err)
		}
		keys[name] = raw
	}
	if err := r.Publisher.PublishESNI(cfg.PublishESNI, keys); err != nil {
		return err
	}
	for name, dir := range cfg.ESNIKeySets {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.Publisher.WatchESNI(ctx, name, dir, time.Duration(cfg.PollInterval))
		}()
	}
	return nil
}
