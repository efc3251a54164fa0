package server

import (
	"fmt"
	"sort"
	"strings"
)

// Routes maps server names to backend addresses (host:port, or unix:PATH
// for a backend on the same host: see UnixPrefix) for the split
// relay, like Traefik's HostSNI rules: an exact name (case-insensitive)
// wins, and "*" catches every other name.
type Routes map[string]string

// ParseRoutes parses "name=addr,name=addr,*=addr".
func ParseRoutes(spec string) (Routes, error) {
	r := Routes{}
	for _, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, addr, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("%w: route %q is not name=host:port or name=unix:PATH", ErrConfig, part)
		}
		r[strings.TrimSpace(name)] = strings.TrimSpace(addr)
	}
	return r, r.validate()
}

func (r Routes) validate() error {
	for name, addr := range r {
		if name == "" {
			return fmt.Errorf("%w: route with an empty name", ErrConfig)
		}
		if err := checkAddr(addr); err != nil {
			return fmt.Errorf("%w: route %s: address %q: %v", ErrConfig, name, addr, err)
		}
	}
	return nil
}

// Lookup returns the backend for a server name: the exact route, else
// the "*" route.
func (r Routes) Lookup(name string) (string, bool) {
	for n, addr := range r {
		if n != "*" && strings.EqualFold(n, name) {
			return addr, true
		}
	}
	addr, ok := r["*"]
	return addr, ok
}

// String formats the routes as ParseRoutes reads them, sorted by name.
func (r Routes) String() string {
	names := make([]string, 0, len(r))
	for n := range r {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + "=" + r[n]
	}
	return strings.Join(parts, ",")
}
