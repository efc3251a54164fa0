package ech

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"io"

	"github.com/cloudflare/circl/hpke"
	"github.com/cloudflare/circl/kem"
)

// Key is one ECH key: the config that publishes it and the HPKE private key,
// serialized as circl's (and RFC 9180's SerializePrivateKey) encoding.
//
// A Key caches its decoded private key for Open, so it must not be copied
// after first use; pass *Key around.
type Key struct {
	Config     Config
	PrivateKey []byte

	cache keyCache
}

// KeyOptions say what GenerateKey makes. The zero value gives DHKEM(X25519)
// with HKDF-SHA256 and AES-128-GCM, config id 0, and public name
// "public.lab.test".
type KeyOptions struct {
	ConfigID          uint8
	KEM               uint16        // HPKE KEM id; 0 means DHKEM(X25519, HKDF-SHA256)
	CipherSuites      []CipherSuite // nil means HKDF-SHA256 with AES-128-GCM
	PublicName        string        // "" means "public.lab.test"
	MaximumNameLength uint8
	Extensions        []Extension
	Rand              io.Reader // nil means crypto/rand
}

// GenerateKey makes a fresh HPKE key pair with circl and the ECHConfig that
// publishes it.
func GenerateKey(o KeyOptions) (*Key, error) {
	if o.KEM == 0 {
		o.KEM = uint16(hpke.KEM_X25519_HKDF_SHA256)
	}
	if o.CipherSuites == nil {
		o.CipherSuites = []CipherSuite{{KDF: uint16(hpke.KDF_HKDF_SHA256), AEAD: uint16(hpke.AEAD_AES128GCM)}}
	}
	if o.PublicName == "" {
		o.PublicName = "public.lab.test"
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	scheme, err := KEMScheme(o.KEM)
	if err != nil {
		return nil, err
	}
	for _, cs := range o.CipherSuites {
		if !hpke.KDF(cs.KDF).IsValid() || !hpke.AEAD(cs.AEAD).IsValid() {
			return nil, unsupported("ECHConfig", "cipher_suites",
				fmt.Sprintf("KDF %#04x / AEAD %#04x not supported by circl", cs.KDF, cs.AEAD))
		}
	}
	seed := make([]byte, scheme.SeedSize())
	if _, err := io.ReadFull(o.Rand, seed); err != nil {
		return nil, fmt.Errorf("ech: reading randomness: %w", err)
	}
	pk, sk := scheme.DeriveKeyPair(seed)
	pub, err := pk.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("ech: encoding public key: %w", err)
	}
	priv, err := sk.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("ech: encoding private key: %w", err)
	}
	k := &Key{PrivateKey: priv, Config: Config{
		ConfigID: o.ConfigID, KEM: o.KEM, PublicKey: pub,
		CipherSuites:      append([]CipherSuite(nil), o.CipherSuites...),
		MaximumNameLength: o.MaximumNameLength, PublicName: o.PublicName,
		Extensions: append([]Extension(nil), o.Extensions...),
	}}
	if _, err := k.Config.Marshal(); err != nil {
		return nil, err
	}
	return k, nil
}

// NewKey pairs a config with a serialized private key, checking that the
// private key belongs to the config's KEM and public key.
func NewKey(c Config, priv []byte) (*Key, error) {
	k := &Key{Config: c, PrivateKey: append([]byte(nil), priv...)}
	if err := k.Check(); err != nil {
		return nil, err
	}
	if len(k.Config.Raw) == 0 {
		if _, err := k.Config.Marshal(); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// Check verifies that the private key decodes for the config's KEM and
// that its public key is the one the config publishes.
func (k *Key) Check() error {
	if err := k.Config.Validate(); err != nil {
		return err
	}
	pub, err := PublicKeyOf(k.Config.KEM, k.PrivateKey)
	if err != nil {
		return err
	}
	if !bytes.Equal(pub, k.Config.PublicKey) {
		return &FieldError{Struct: "Key", Field: "private_key",
			Reason: fmt.Sprintf("does not match the public key of config %d", k.Config.ConfigID), Err: ErrInvalid}
	}
	return nil
}

// PublicKeyOf decodes a serialized private key of the given KEM and returns
// the serialized public key that goes with it.
func PublicKeyOf(kemID uint16, priv []byte) ([]byte, error) {
	scheme, err := KEMScheme(kemID)
	if err != nil {
		return nil, err
	}
	if len(priv) != scheme.PrivateKeySize() {
		return nil, &FieldError{Struct: "Key", Field: "private_key", Err: ErrMalformed,
			Reason: fmt.Sprintf("%d bytes, %s needs %d", len(priv), KEMName(kemID), scheme.PrivateKeySize())}
	}
	sk, err := scheme.UnmarshalBinaryPrivateKey(priv)
	if err != nil {
		return nil, &FieldError{Struct: "Key", Field: "private_key", Reason: err.Error(), Err: ErrMalformed}
	}
	pub, err := sk.Public().MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("ech: encoding public key: %w", err)
	}
	return pub, nil
}

// TLSKey converts the key for Go's crypto/tls (Config.EncryptedClientHelloKeys).
// crypto/tls takes the RFC 9180 SerializePrivateKey form, which is what
// circl produces; KEMs crypto/tls lacks (X448, X25519Kyber768Draft00) give
// an error wrapping ErrUnsupported.
func (k *Key) TLSKey(sendAsRetry bool) (tls.EncryptedClientHelloKey, error) {
	if !TLSSupportsKEM(k.Config.KEM) {
		return tls.EncryptedClientHelloKey{}, unsupported("ECHConfig", "kem_id",
			fmt.Sprintf("crypto/tls does not implement %s (%#04x)", KEMName(k.Config.KEM), k.Config.KEM))
	}
	raw, err := configRaw(&k.Config)
	if err != nil {
		return tls.EncryptedClientHelloKey{}, err
	}
	return tls.EncryptedClientHelloKey{
		Config:      append([]byte(nil), raw...),
		PrivateKey:  append([]byte(nil), k.PrivateKey...),
		SendAsRetry: sendAsRetry,
	}, nil
}

// KEMScheme returns circl's scheme for an HPKE KEM id, or an error naming the
// id when circl does not implement it.
func KEMScheme(id uint16) (kem.Scheme, error) {
	k := hpke.KEM(id)
	if !k.IsValid() {
		return nil, unsupported("ECHConfig", "kem_id", fmt.Sprintf("KEM %#04x not supported by circl", id))
	}
	return k.Scheme(), nil
}
