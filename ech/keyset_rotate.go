package ech

import "slices"

// Options returns the KeyOptions that make a key like k: the same KEM,
// cipher suites, public name, maximum name length and extensions. ConfigID
// and Rand are left zero.
func (k *Key) Options() KeyOptions {
	c := &k.Config
	return KeyOptions{KEM: c.KEM, CipherSuites: slices.Clone(c.CipherSuites), PublicName: c.PublicName,
		MaximumNameLength: c.MaximumNameLength, Extensions: slices.Clone(c.Extensions)}
}

// PublishedOptions returns the Options of each published key, newest
// first: what the set looks like to clients. Rotating to these replaces
// every published key with one like it, so a set of an X25519 and an
// X-Wing key stays one of each.
func (ks *KeySet) PublishedOptions() []KeyOptions {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	var out []KeyOptions
	for _, e := range ks.entries {
		if e.Published {
			out = append(out, e.Key.Options())
		}
	}
	return out
}

// Override returns o with each field that over sets (non-zero, or non-nil
// for slices and Rand) taken from over. ConfigID is never taken: rotation
// picks a free one.
func (o KeyOptions) Override(over KeyOptions) KeyOptions {
	if over.KEM != 0 {
		o.KEM = over.KEM
	}
	if over.CipherSuites != nil {
		o.CipherSuites = slices.Clone(over.CipherSuites)
	}
	if over.PublicName != "" {
		o.PublicName = over.PublicName
	}
	if over.MaximumNameLength != 0 {
		o.MaximumNameLength = over.MaximumNameLength
	}
	if over.Extensions != nil {
		o.Extensions = slices.Clone(over.Extensions)
	}
	if over.Rand != nil {
		o.Rand = over.Rand
	}
	return o
}

// RotationOptions returns the options of the keys that replace the
// published ones: one like each published key (PublishedOptions), with the
// fields over sets overriding. When over names a KEM there is one new key,
// of that KEM, like the newest published key otherwise; when nothing is
// published the result is over alone.
func (ks *KeySet) RotationOptions(over KeyOptions) []KeyOptions {
	base := ks.PublishedOptions()
	switch {
	case len(base) == 0:
		return []KeyOptions{KeyOptions{}.Override(over)}
	case over.KEM != 0:
		base = base[:1]
	}
	for i := range base {
		base[i] = base[i].Override(over)
	}
	return base
}
