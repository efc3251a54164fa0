package server

import (
	"crypto/tls"
	"fmt"
	"sync"

	"github.com/echlab/echlab/ech"
)

// decoyKeys is the KeySource of the split front's in-process public-name
// server. It reaches that server only with ClientHellos the relay refused
// to open (unknown config_id, a cipher suite the config does not
// advertise, no key opening it), and must complete them with the
// ClientHelloOuter and retry configs (RFC 9849 §7.1), never accept them:
// crypto/tls would trial-decrypt with every key whatever the config_id
// and suite. So each key's real ECHConfig (retry configs stay right) is
// paired with a private key of the same KEM unrelated to it: crypto/tls's
// HPKE open always fails, it moves on to the next key and, none opening,
// continues with the outer ClientHello and sends the SendAsRetry configs
// (processECHClientHello and the retry_configs in
// handshake_server_tls13.go).
type decoyKeys struct {
	ks *ech.KeySet

	mu   sync.Mutex
	priv map[uint16][]byte // KEM id → a private key no config publishes
}

func newDecoyKeys(ks *ech.KeySet) *decoyKeys {
	return &decoyKeys{ks: ks, priv: map[uint16][]byte{}}
}

// TLSKeys returns the keys the set gives crypto/tls now (live, usable,
// SendAsRetry on the published ones), each with its KEM's decoy private
// key.
func (d *decoyKeys) TLSKeys() ([]tls.EncryptedClientHelloKey, error) {
	keys, _ := d.ks.TLSKeysSupported()
	for i := range keys {
		// ECHConfig: version(2) length(2) config_id(1) kem_id(2) ...
		c := keys[i].Config
		if len(c) < 7 {
			return nil, fmt.Errorf("%w: ECHConfig of %d bytes", ErrConfig, len(c))
		}
		var err error
		if keys[i].PrivateKey, err = d.decoy(uint16(c[5])<<8 | uint16(c[6])); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

// decoy returns the decoy private key of a KEM, made on first use.
func (d *decoyKeys) decoy(kem uint16) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if p, ok := d.priv[kem]; ok {
		return p, nil
	}
	k, err := ech.GenerateKey(ech.KeyOptions{KEM: kem})
	if err != nil {
		return nil, err
	}
	d.priv[kem] = k.PrivateKey
	return k.PrivateKey, nil
}
