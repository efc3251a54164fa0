package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/echlab/echlab/internal/pki"
)

// certSet holds a certificate per served name and picks one by SNI.
type certSet struct {
	public string
	byName map[string]*tls.Certificate
}

func issueCerts(ca *pki.CA, public string, names []string) (*certSet, error) {
	cs := &certSet{public: public, byName: map[string]*tls.Certificate{}}
	for _, n := range append([]string{public}, names...) {
		key := strings.ToLower(n)
		if _, ok := cs.byName[key]; ok {
			continue
		}
		c, err := ca.Issue(n, []string{n}, false)
		if err != nil {
			return nil, fmt.Errorf("server: certificate for %s: %w", n, err)
		}
		cs.byName[key] = &c
	}
	return cs, nil
}

// get returns the certificate for the SNI, or the public name's one for
// an unknown or missing name.
func (cs *certSet) get(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c, ok := cs.byName[strings.ToLower(hello.ServerName)]; ok {
		return c, nil
	}
	return cs.byName[strings.ToLower(cs.public)], nil
}

// obsKey carries a *peekConn (used as a plain observation record) through
// the QUIC connection context to the tls.Config callbacks.
type obsKey struct{}

// observation finds where the callbacks of one handshake leave notes: the
// peekConn for TCP, the context value for QUIC.
func observation(info *tls.ClientHelloInfo) *peekConn {
	if p := peekOf(info.Conn); p != nil {
		return p
	}
	if ctx := info.Context(); ctx != nil {
		p, _ := ctx.Value(obsKey{}).(*peekConn)
		return p
	}
	return nil
}

func withObservation(ctx context.Context, p *peekConn) context.Context {
	return context.WithValue(ctx, obsKey{}, p)
}

// tlsConfig builds the server's tls.Config: certificates by SNI, ECH keys
// from the KeySource on every handshake, optional mTLS and forced HRR.
func tlsConfig(c *Config, certs *certSet, known *idSet, nextProtos []string) *tls.Config {
	cfg := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     nextProtos,
		GetCertificate: certs.get,
		GetConfigForClient: func(info *tls.ClientHelloInfo) (*tls.Config, error) {
			if p := observation(info); p != nil {
				p.noteHello(info.ServerName)
			}
			return nil, nil
		},
	}
	if c.Keys != nil {
		cfg.MinVersion = tls.VersionTLS13
		keys := c.Keys
		cfg.GetEncryptedClientHelloKeys = func(info *tls.ClientHelloInfo) ([]tls.EncryptedClientHelloKey, error) {
			// crypto/tls also asks while writing EncryptedExtensions of a
			// handshake without ECH, where it sends no retry configs
			// whatever the keys: the key set is not read for it (its
			// manifest's stat and the keys' list were 2-3% of the CPU of
			// such a handshake).
			if !slices.Contains(info.Extensions, extECH) {
				return []tls.EncryptedClientHelloKey{}, nil
			}
			p := observation(info)
			if p != nil {
				if ks, ok := p.keysAgain(); ok {
					return ks, nil
				}
			}
			ks, err := keys.TLSKeys()
			if err != nil {
				return nil, fmt.Errorf("server: ECH keys: %w", err)
			}
			if ks == nil {
				ks = []tls.EncryptedClientHelloKey{}
			}
			ids := configIDs(ks)
			known.add(ids)
			if p != nil {
				return p.noteECHKeys(info, ks, ids), nil
			}
			return ks, nil
		}
	}
	if c.RequireClientCert {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		cfg.ClientCAs = c.CA.Pool()
	}
	if c.ForceHRR {
		cfg.CurvePreferences = []tls.CurveID{tls.CurveP256}
	}
	return cfg
}

// idSet remembers every config id the server has held, so that a client
// naming a retired key is logged as "rejected" (stale) and not "grease".
type idSet struct{ ids [256]atomic.Bool }

func (s *idSet) add(ids []uint8) {
	for _, id := range ids {
		s.ids[id].Store(true)
	}
}

func (s *idSet) has(id uint8) bool { return s.ids[id].Load() }

// configIDs returns the config_id byte of each key's ECHConfig (version
// and length come first, then the id).
func configIDs(ks []tls.EncryptedClientHelloKey) []uint8 {
	out := make([]uint8, 0, len(ks))
	for _, k := range ks {
		if len(k.Config) > 4 {
			out = append(out, k.Config[4])
		}
	}
	return out
}
