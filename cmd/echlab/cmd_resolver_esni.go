package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/echlab/echlab/resolver"
)

// addESNI appends the --esni-keyset directories and --publish-esni rules.
func (f *resolverFlags) addESNI(cfg *resolver.Config) error {
	for _, ks := range f.esniKeySets {
		name, dir, ok := strings.Cut(ks, "=")
		if !ok || name == "" || dir == "" {
			return fmt.Errorf("--esni-keyset %q: want NAME=DIR", ks)
		}
		if cfg.ESNIKeySets == nil {
			cfg.ESNIKeySets = map[string]string{}
		}
		cfg.ESNIKeySets[name] = dir
	}
	for _, p := range f.publishESNI {
		rule, err := parsePublishESNI(p)
		if err != nil {
			return err
		}
		cfg.PublishESNI = append(cfg.PublishESNI, rule)
	}
	return nil
}

// parsePublishESNI reads NAME,keyset=K[,ttl=S].
func parsePublishESNI(s string) (resolver.ESNIPublishRule, error) {
	parts := strings.Split(s, ",")
	r := resolver.ESNIPublishRule{Name: parts[0]}
	for _, p := range parts[1:] {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			return r, fmt.Errorf("--publish-esni %q: %q is not key=value", s, p)
		}
		switch k {
		case "keyset":
			r.KeySet = v
		case "ttl":
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return r, fmt.Errorf("--publish-esni %q: bad ttl %q", s, v)
			}
			r.TTL = uint32(n)
		default:
			return r, fmt.Errorf("--publish-esni %q: unknown key %q (keyset, ttl)", s, k)
		}
	}
	if r.Name == "" || r.KeySet == "" {
		return r, fmt.Errorf("--publish-esni %q: want NAME,keyset=K", s)
	}
	return r, nil
}
