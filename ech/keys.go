package ech

import (
	"crypto/rand"
	"fmt"
	"io"

	"github.com/cloudflare/circl/hpke"
	"github.com/cloudflare/circl/kem"
)

// Key is one ECH key: the config that publishes it and the HPKE private key,
// serialized as circl's (and RFC 9180's SerializePrivateKey) encoding.
type Key struct {
	Config     Config
	PrivateKey []byte
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
			return nil, &FieldError{Struct: "ECHConfig", Field: "cipher_suites",
				Reason: fmt.Sprintf("KDF %#04x / AEAD %#04x not supported by circl", cs.KDF, cs.AEAD), Err: ErrUnsupported}
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
		ConfigID: o.ConfigID, KEM: o.KEM, PublicKey: pub, CipherSuites: o.CipherSuites,
		MaximumNameLength: o.MaximumNameLength, PublicName: o.PublicName, Extensions: o.Extensions,
	}}
	if _, err := k.Config.Marshal(); err != nil {
		return nil, err
	}
	return k, nil
}

// KEMScheme returns circl's scheme for an HPKE KEM id, or an error naming the
// id when circl does not implement it.
func KEMScheme(id uint16) (kem.Scheme, error) {
	k := hpke.KEM(id)
	if !k.IsValid() {
		return nil, &FieldError{Struct: "ECHConfig", Field: "kem_id",
			Reason: fmt.Sprintf("KEM %#04x not supported by circl", id), Err: ErrUnsupported}
	}
	return k.Scheme(), nil
}
