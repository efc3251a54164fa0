package conformance

import (
	"crypto/tls"
	"errors"
	"fmt"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/server"
)

// Left out of the variants, because no faithful version can be built here:
//
//   - retry-on-accept (accepts, and sends retry_configs in
//     EncryptedExtensions): crypto/tls's server sends retry configs only
//     when it rejects, and a relay cannot add them because
//     EncryptedExtensions is encrypted under handshake keys the relay does
//     not have.
//   - a wrong config id on acceptance: the config id is chosen by the
//     client, and TLS 1.3 carries no server-side echo of it to edit.

// ErrVariant reports a server variant StartServer does not know.
var ErrVariant = errors.New("conformance: unknown server variant")

// fixedKeys is a server.KeySource that always returns the same keys with
// the SendAsRetry flags chosen by the variant.
type fixedKeys []tls.EncryptedClientHelloKey

// TLSKeys returns the keys.
func (f fixedKeys) TLSKeys() ([]tls.EncryptedClientHelloKey, error) { return f, nil }

// StartServer starts a variant on 127.0.0.1:0 serving HTTPS for
// secret.lab.test (and a certificate for the public name, except for
// ServerRetryForeignCert) and returns its address and a stop function.
// Relay variants return the relay's address; stop ends the relay, then
// the server behind it.
func StartServer(v ServerVariant, env *Env) (addr string, stop func() error, err error) {
	if env == nil || env.CA == nil || env.Key == nil || env.Other == nil {
		return "", nil, fmt.Errorf("conformance: StartServer %s: incomplete Env", v)
	}
	switch v {
	case ServerGood:
		return startECH(env, v, PublicName, fixedKeys{tlsKey(env.Key, true)})
	case ServerRejectNoRetry:
		return startECH(env, v, PublicName, fixedKeys{tlsKey(env.Other, false)})
	case ServerRetryForeignCert:
		// With ForeignName as the server's public name, a ClientHelloOuter
		// for public.lab.test (a name it has no certificate for) gets the
		// other.lab.test certificate.
		return startECH(env, v, ForeignName, fixedKeys{tlsKey(env.Other, true)})
	case ServerRetryStale:
		return startStale(env)
	case ServerFlipConfirmation:
		return startRelayed(env, flipConfirmation)
	case ServerCloseAfterSH:
		return startRelayed(env, closeAfterServerHello)
	case ServerHRRNoECH:
		return startRelayedHRR(env, v, stripECHFromHRR)
	case ServerFlipHRRConfirmation:
		return startRelayedHRR(env, v, flipHRRConfirmation)
	}
	return "", nil, fmt.Errorf("%w: %q", ErrVariant, v)
}

// tlsKey is k for crypto/tls. The suite's keys are X25519, which crypto/tls
// implements, so the conversion cannot fail.
func tlsKey(k *ech.Key, sendAsRetry bool) tls.EncryptedClientHelloKey {
	return tls.EncryptedClientHelloKey{Config: k.Config.Raw, PrivateKey: k.PrivateKey, SendAsRetry: sendAsRetry}
}

// startECH starts echlab's shared-mode server with keys, serving
// secret.lab.test and with a certificate for public.
func startECH(env *Env, v ServerVariant, public string, keys fixedKeys) (string, func() error, error) {
	srv, err := server.Start(server.Config{PublicName: public, Names: []string{SecretName}, CA: env.CA,
		Keys: keys, Mode: string(v)})
	if err != nil {
		return "", nil, fmt.Errorf("conformance: starting %s: %w", v, err)
	}
	return srv.Addr(), srv.Close, nil
}

// startStale starts ServerRetryStale. It holds one crypto/tls key whose
// Config is a fresh config (id 3, public.lab.test) and whose PrivateKey is
// Env.Other's: crypto/tls trial-decrypts with the private key and sends the
// Config as the retry config, so a ClientHello sealed to Env.Key fails, and
// one sealed to the retry config fails too (the private key does not match
// its public key). The fresh config's own private key is dropped.
func startStale(env *Env) (string, func() error, error) {
	stale, err := ech.GenerateKey(ech.KeyOptions{ConfigID: 3, PublicName: PublicName})
	if err != nil {
		return "", nil, fmt.Errorf("conformance: stale config: %w", err)
	}
	k := tls.EncryptedClientHelloKey{Config: stale.Config.Raw, PrivateKey: env.Other.PrivateKey, SendAsRetry: true}
	return startECH(env, ServerRetryStale, PublicName, fixedKeys{k})
}

// startRelayedHRR starts ServerGood's server forced into HelloRetryRequest
// (it prefers only P-256, which crypto/tls and browsers send no key share
// for) behind a relay that applies edit to the HRR.
func startRelayedHRR(env *Env, v ServerVariant, edit firstFlightEdit) (string, func() error, error) {
	srv, err := server.Start(server.Config{PublicName: PublicName, Names: []string{SecretName}, CA: env.CA,
		Keys: fixedKeys{tlsKey(env.Key, true)}, Mode: string(v), ForceHRR: true})
	if err != nil {
		return "", nil, fmt.Errorf("conformance: starting %s: %w", v, err)
	}
	r, err := startRelay(srv.Addr(), edit)
	if err != nil {
		srv.Close()
		return "", nil, err
	}
	return r.addr(), func() error { return errors.Join(r.close(), srv.Close()) }, nil
}

// startRelayed starts ServerGood with a relay in front that applies edit
// to the server's first handshake message.
func startRelayed(env *Env, edit firstFlightEdit) (string, func() error, error) {
	backend, stopBackend, err := StartServer(ServerGood, env)
	if err != nil {
		return "", nil, err
	}
	r, err := startRelay(backend, edit)
	if err != nil {
		stopBackend()
		return "", nil, err
	}
	return r.addr(), func() error { return errors.Join(r.close(), stopBackend()) }, nil
}
