package resolver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/internal/watch"
	"github.com/miekg/dns"
)

// ErrPublish is wrapped by every publishing misconfiguration: an unknown
// key set, an invalid ECHConfigList, an owner name in no zone.
var ErrPublish = errors.New("resolver: cannot publish ECH")

// defaultPublishTTL is the TTL of HTTPS records the publisher creates:
// short, so that clients see a rotation soon.
const defaultPublishTTL = 60

// PublishRule says that the HTTPS record of a service carries the `ech`
// SvcParam of a key set.
type PublishRule struct {
	Name   string `json:"name"`   // the service's host name, e.g. "secret.lab.test."
	KeySet string `json:"keyset"` // a key of Config.KeySets
	// Port is the service's TCP/UDP port; 0 means 443. For other ports
	// the record is published at the port-prefixed name _PORT._https.NAME.
	Port uint16 `json:"port,omitempty"`
	// Target is the TargetName of a record the publisher creates. Empty
	// means "." (the owner) on port 443 and Name on other ports; "." is
	// refused on other ports (Chromium ignores such records).
	Target string   `json:"target,omitempty"`
	ALPN   []string `json:"alpn,omitempty"` // alpn of a created record
	TTL    uint32   `json:"ttl,omitempty"`  // of a created record; 0 means 60
}

// Owner returns the owner name of the HTTPS record the rule publishes.
func (r PublishRule) Owner() string {
	name := dns.CanonicalName(r.Name)
	if r.Port == 0 || r.Port == 443 {
		return name
	}
	return "_" + strconv.Itoa(int(r.Port)) + "._https." + name
}

// target returns the TargetName of a created record.
func (r PublishRule) target() string {
	switch {
	case r.Target != "":
		return dns.CanonicalName(r.Target)
	case r.Port == 0 || r.Port == 443:
		return "."
	}
	return dns.CanonicalName(r.Name)
}

// Publisher keeps the zones served by an Authority in step with key sets:
// it writes the ECHConfigList of each key set into the HTTPS records of
// its rules and bumps the SOA serial of a zone whenever a rotation changes
// what it publishes.
type Publisher struct {
	mu      sync.Mutex
	auth    *Authority
	base    []*Zone           // zones as loaded
	rules   []PublishRule     // validated
	lists   map[string][]byte // key set name → ECHConfigList published
	serials map[string]uint32 // zone origin → serial served
	esni    esniState         // _esni TXT records (publish_esni.go)
	log     *slog.Logger
}

// newPublisher checks the rules against the zones and key sets (lists
// holds the current ECHConfigList of every key set), publishes, and serves
// the result through auth.
func newPublisher(auth *Authority, zones []*Zone, rules []PublishRule, lists map[string][]byte, log *slog.Logger) (*Publisher, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Publisher{auth: auth, base: zones, lists: map[string][]byte{}, serials: map[string]uint32{}, log: log}
	for _, z := range zones {
		p.serials[z.Origin] = z.Serial()
	}
	for name, list := range lists {
		if _, err := ech.ParseConfigList(list); err != nil {
			return nil, fmt.Errorf("%w: key set %q: %w", ErrPublish, name, err)
		}
		p.lists[name] = list
	}
	for _, r := range rules {
		if err := p.checkRule(r); err != nil {
			return nil, err
		}
		p.rules = append(p.rules, r)
	}
	return p, p.serve()
}

func (p *Publisher) checkRule(r PublishRule) error {
	if _, ok := p.lists[r.KeySet]; !ok {
		return fmt.Errorf("%w: rule for %s names unknown key set %q", ErrPublish, r.Name, r.KeySet)
	}
	if _, ok := dns.IsDomainName(r.Name); !ok || r.Name == "" {
		return fmt.Errorf("%w: %q is not a domain name", ErrPublish, r.Name)
	}
	if r.Port != 0 && r.Port != 443 && r.Target == "." {
		return fmt.Errorf("%w: rule for %s port %d: TargetName \".\" on a port-prefixed name is ignored by browsers; leave it empty", ErrPublish, r.Name, r.Port)
	}
	owner := r.Owner()
	z, err := p.ownerZone(owner)
	if err != nil {
		return err
	}
	for _, rr := range z.rrset(owner, dns.TypeHTTPS) {
		if rr.(*dns.HTTPS).Priority == 0 {
			return fmt.Errorf("%w: %s has an AliasMode HTTPS record", ErrPublish, owner)
		}
	}
	return nil
}

// Update publishes a new ECHConfigList for a key set. When it differs from
// the one published, the zones holding the key set's records get a new
// serial. An invalid list is refused and the old one stays.
func (p *Publisher) Update(keySet string, list []byte) error {
	if _, err := ech.ParseConfigList(list); err != nil {
		return fmt.Errorf("%w: key set %q: %w", ErrPublish, keySet, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	old, ok := p.lists[keySet]
	if !ok {
		return fmt.Errorf("%w: unknown key set %q", ErrPublish, keySet)
	}
	if bytes.Equal(old, list) {
		return nil
	}
	p.lists[keySet] = list
	var owners []string
	for _, r := range p.rules {
		if r.KeySet == keySet {
			owners = append(owners, r.Owner())
		}
	}
	return p.republish(owners, "resolver: published new ECH configs", keySet, len(list))
}

// ownerZone returns the base zone that holds owner, refusing an owner in
// no zone or one with a CNAME (no other data may stand beside it).
func (p *Publisher) ownerZone(owner string) (*Zone, error) {
	z := zoneFor(p.base, owner)
	if z == nil {
		return nil, fmt.Errorf("%w: %s is in no zone", ErrPublish, owner)
	}
	if len(z.rrset(owner, dns.TypeCNAME)) > 0 {
		return nil, fmt.Errorf("%w: %s has a CNAME", ErrPublish, owner)
	}
	return z, nil
}

// republish bumps, once each, the serial of every zone holding one of
// owners (the records of a key set that changed), rebuilds the served
// zones, logs msg and serves them. The caller holds mu.
func (p *Publisher) republish(owners []string, msg, keySet string, size int) error {
	bumped := map[string]bool{}
	for _, owner := range owners {
		z := zoneFor(p.base, owner)
		if z != nil && !bumped[z.Origin] {
			bumped[z.Origin] = true
			p.serials[z.Origin]++ // RFC 1982 arithmetic: wraps
		}
	}
	zs, err := p.build()
	if err != nil {
		return err
	}
	p.log.Info(msg, "keyset", keySet, "bytes", size)
	return p.auth.SetZones(zs)
}

// serve rebuilds the served zones and hands them to the authority. The
// caller holds mu (or owns p).
func (p *Publisher) serve() error {
	zs, err := p.build()
	if err != nil {
		return err
	}
	return p.auth.SetZones(zs)
}

// Serial returns the SOA serial served for a zone origin.
func (p *Publisher) Serial(origin string) uint32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.serials[dns.CanonicalName(origin)]
}

// build derives the served zones from the base zones, the rules and the
// current lists. The caller holds mu (or owns p).
func (p *Publisher) build() ([]*Zone, error) {
	out := make([]*Zone, len(p.base))
	for i, z := range p.base {
		cur := z
		for _, r := range p.rules {
			owner := r.Owner()
			if zoneFor(p.base, owner) != z {
				continue
			}
			rrs := publishedRRset(cur.rrset(owner, dns.TypeHTTPS), r, p.lists[r.KeySet])
			cur = cur.with(owner, dns.TypeHTTPS, rrs, p.serials[z.Origin])
		}
		cur = p.buildESNI(z, cur)
		if cur == z && z.Serial() != p.serials[z.Origin] {
			cur = z.with(z.Origin, dns.TypeSOA, nil, p.serials[z.Origin])
		}
		out[i] = cur
	}
	return out, nil
}

// publishedRRset sets the ech SvcParam on every ServiceMode record of
// existing, or makes one ServiceMode record when there is none.
func publishedRRset(existing []dns.RR, r PublishRule, list []byte) []dns.RR {
	echKV := &dns.SVCBECHConfig{ECH: append([]byte(nil), list...)}
	var out []dns.RR
	for _, rr := range existing {
		h := dns.Copy(rr).(*dns.HTTPS)
		kept := h.Value[:0:0]
		for _, kv := range h.Value {
			if kv.Key() != dns.SVCB_ECHCONFIG {
				kept = append(kept, kv)
			}
		}
		h.Value = append(kept, echKV)
		out = append(out, h)
	}
	if len(out) > 0 {
		return out
	}
	h := &dns.HTTPS{SVCB: dns.SVCB{
		Hdr:      publishedHeader(r.Owner(), dns.TypeHTTPS, r.TTL),
		Priority: 1,
		Target:   r.target(),
	}}
	if len(r.ALPN) > 0 {
		h.Value = append(h.Value, &dns.SVCBAlpn{Alpn: append([]string(nil), r.ALPN...)})
	}
	if r.Port != 0 && r.Port != 443 {
		h.Value = append(h.Value, &dns.SVCBPort{Port: r.Port})
	}
	h.Value = append(h.Value, echKV)
	return []dns.RR{h}
}

// publishedHeader is the header of a record the publisher creates: class
// IN and ttl, or defaultPublishTTL when ttl is 0.
func publishedHeader(owner string, rrtype uint16, ttl uint32) dns.RR_Header {
	if ttl == 0 {
		ttl = defaultPublishTTL
	}
	return dns.RR_Header{Name: owner, Rrtype: rrtype, Class: dns.ClassINET, Ttl: ttl}
}

// KeySetFile is the file of a key set directory whose changes (size,
// modification time or contents) mean that the key set was rotated: the
// manifest that ech.SaveKeySet writes last.
const KeySetFile = ech.KeySetManifest

// DefaultPollInterval is how often a key set directory is checked.
const DefaultPollInterval = watch.DefaultInterval

// LoadFunc reads a key set directory and returns its ECHConfigList.
type LoadFunc func(dir string) ([]byte, error)

// loadKeySetConfigList is the default LoadFunc: the ECHConfigList of the
// published keys of the ech key set saved in dir.
func loadKeySetConfigList(dir string) ([]byte, error) {
	ks, err := ech.LoadKeySet(dir)
	if err != nil {
		return nil, err
	}
	return ks.ConfigList()
}

// Watch polls dir every interval until ctx ends, and publishes the key set
// again when its KeySetFile changes. A key set that fails to load (a
// rotation caught half-written, a bad file) is logged and retried at the
// next poll; the last good configs stay published.
func (p *Publisher) Watch(ctx context.Context, keySet, dir string, load LoadFunc, interval time.Duration) {
	watchFile(ctx, filepath.Join(dir, KeySetFile), interval, func() error {
		list, err := load(dir)
		if err == nil {
			err = p.Update(keySet, list)
		}
		if err != nil {
			p.log.Warn("resolver: key set not republished", "keyset", keySet, "dir", dir, "err", err)
		}
		return err
	})
}

// watchFile is watch.File and fileStamp is watch.Stamp, under the names
// the resolver's watchers use.
func watchFile(ctx context.Context, file string, interval time.Duration, reload func() error) {
	watch.File(ctx, file, interval, reload)
}

func fileStamp(file string) string { return watch.Stamp(file) }
