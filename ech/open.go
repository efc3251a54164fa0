package ech

import (
	"errors"
	"fmt"
	"slices"

	"github.com/cloudflare/circl/hpke"
)

// ErrNoECH reports a ClientHello without the encrypted_client_hello
// extension that an operation needs.
var ErrNoECH = errors.New("ech: no encrypted_client_hello extension")

// KeySource is where Open finds private keys. *KeySet satisfies it, and so
// does KeyList.
type KeySource interface {
	// Lookup returns the keys whose config has this config_id.
	Lookup(configID uint8) []*Key
	// Keys returns every key, for trial decryption.
	Keys() []*Key
}

// KeyList is a KeySource over a plain slice of keys.
type KeyList []*Key

// Lookup returns the keys whose config has this config_id.
func (l KeyList) Lookup(configID uint8) []*Key {
	var out []*Key
	for _, k := range l {
		if k.Config.ConfigID == configID {
			out = append(out, k)
		}
	}
	return out
}

// Keys returns the keys.
func (l KeyList) Keys() []*Key { return l }

// OpenOptions tune Open. The zero value selects keys by config_id only, as
// RFC 9849 §7.1 requires by default.
type OpenOptions struct {
	// TrialDecrypt also tries every other key when no key with the
	// ClientHello's config_id opens it (§7.1 method 2, §10.4).
	TrialDecrypt bool
}

// Opened is what Open learned from a ClientHelloOuter.
type Opened struct {
	Inner        *ClientHello // the reconstructed ClientHelloInner; Raw is the full message
	Outer        *ClientHello
	Key          *Key // the key that opened it; nil for OpenWithSecret
	ConfigID     uint8
	KEM          uint16
	Suite        CipherSuite
	Enc          []byte
	EncodedInner []byte // the decrypted EncodedClientHelloInner, padding included
	PaddingLen   int
	Trial        bool         // opened by a key whose config_id differs (trial decryption)
	Context      *OpenContext // HPKE context for the ClientHello after a HelloRetryRequest
}

// OpenContext is the HPKE receiver context of an accepted ECH handshake.
// It is not safe for concurrent use.
type OpenContext struct {
	opener   payloadOpener
	key      *Key   // nil when opened from a logged secret (OpenWithSecret)
	kem      uint16 // the config's KEM
	configID uint8
	suite    CipherSuite
}

// payloadOpener is an HPKE receiver context: circl's hpke.Opener, or one
// computed from a logged shared secret (see OpenWithSecret).
type payloadOpener interface {
	Open(ct, aad []byte) ([]byte, error)
}

// Open decrypts the ECH payload of a ClientHelloOuter (RFC 9849 §7.1): it
// picks the candidate keys by config_id (and, with TrialDecrypt, all
// keys), HPKE-opens the payload with info "tls ech\x00"||ECHConfig and the
// ClientHelloOuterAAD, and reconstructs ClientHelloInner. No key opening it
// gives ErrDecrypt; a payload that opens but decodes badly gives the
// decoding error (ErrBadPadding, ErrOuterExtensions, ErrInnerType, …).
func Open(keys KeySource, outer *ClientHello, opts *OpenOptions) (*Opened, error) {
	if opts == nil {
		opts = &OpenOptions{}
	}
	e, err := outerECH(outer)
	if err != nil {
		return nil, err
	}
	aad := ClientHelloOuterAAD(outer)
	cands := keys.Lookup(e.ConfigID)
	if opts.TrialDecrypt {
		for _, k := range keys.Keys() {
			if !slices.Contains(cands, k) {
				cands = append(cands, k)
			}
		}
	}
	for _, k := range cands {
		opener, pt, ok := tryOpen(k, e, aad)
		if !ok {
			continue
		}
		ctx := &OpenContext{opener: opener, key: k, kem: k.Config.KEM, configID: e.ConfigID, suite: e.CipherSuite}
		o, err := ctx.decode(outer, e, pt)
		if err != nil {
			return nil, err
		}
		o.Trial = k.Config.ConfigID != e.ConfigID
		return o, nil
	}
	return nil, &FieldError{Struct: "ClientHelloOuter", Field: "encrypted_client_hello",
		Reason: fmt.Sprintf("no key opens the payload (config_id %d, %d candidate keys)", e.ConfigID, len(cands)), Err: ErrDecrypt}
}

func outerECH(outer *ClientHello) (*ECHClientHello, error) {
	if len(outer.Raw) < 4 {
		return nil, invalid("ClientHelloOuter", "Raw", "not a parsed message (use ParseClientHello)")
	}
	e := outer.ECH
	if e == nil {
		return nil, &FieldError{Struct: "ClientHelloOuter", Field: "encrypted_client_hello", Reason: "absent", Err: ErrNoECH}
	}
	if e.Type != ECHOuter {
		return nil, invalid("ClientHelloOuter", "encrypted_client_hello", "type is not outer")
	}
	return e, nil
}

// tryOpen sets up an HPKE receiver for key k and opens the payload; it
// fails quietly when the key cannot apply.
func tryOpen(k *Key, e *ECHClientHello, aad []byte) (hpke.Opener, []byte, bool) {
	c := &k.Config
	if !slices.Contains(c.CipherSuites, e.CipherSuite) {
		return nil, nil, false
	}
	kemID, kdf, aead := hpke.KEM(c.KEM), hpke.KDF(e.CipherSuite.KDF), hpke.AEAD(e.CipherSuite.AEAD)
	if !kemID.IsValid() || !kdf.IsValid() || !aead.IsValid() {
		return nil, nil, false
	}
	sk, err := k.decodedPrivateKey(kemID)
	if err != nil {
		return nil, nil, false
	}
	r, err := hpke.NewSuite(kemID, kdf, aead).NewReceiver(sk, hpkeInfo(c))
	if err != nil {
		return nil, nil, false
	}
	opener, err := r.Setup(e.Enc)
	if err != nil {
		return nil, nil, false
	}
	pt, err := opener.Open(e.Payload, aad)
	if err != nil {
		return nil, nil, false
	}
	return opener, pt, true
}

// hpkeInfo is "tls ech" || 0x00 || ECHConfig (RFC 9849 §6.1).
func hpkeInfo(c *Config) []byte {
	return append([]byte("tls ech\x00"), c.Raw...)
}

// ClientHelloOuterAAD returns the ClientHelloOuterAAD of RFC 9849 §5.2:
// the outer ClientHello without its 4-byte header and with the ECH payload
// replaced by zeros of the same length.
func ClientHelloOuterAAD(outer *ClientHello) []byte {
	if len(outer.Raw) < 4 {
		return nil
	}
	aad := append([]byte(nil), outer.Raw[4:]...)
	if e := outer.ECH; e != nil && e.Type == ECHOuter {
		clear(aad[e.PayloadOffset-4 : e.PayloadOffset-4+len(e.Payload)])
	}
	return aad
}

func (c *OpenContext) decode(outer *ClientHello, e *ECHClientHello, pt []byte) (*Opened, error) {
	inner, pad, err := DecodeClientHelloInner(pt, outer)
	if err != nil {
		return nil, err
	}
	return &Opened{
		Inner: inner, Outer: outer, Key: c.key, ConfigID: e.ConfigID, KEM: c.kem,
		Suite: e.CipherSuite, Enc: e.Enc, EncodedInner: pt, PaddingLen: pad, Context: c,
	}, nil
}

// OpenSecond opens the second ClientHelloOuter, sent after a
// HelloRetryRequest, with the same HPKE context (RFC 9849 §7.1.1): its
// cipher suite and config_id must be unchanged and its enc empty, and the
// HPKE sequence number advances.
func (c *OpenContext) OpenSecond(outer2 *ClientHello) (*Opened, error) {
	e, err := outerECH(outer2)
	if err != nil {
		return nil, err
	}
	switch {
	case e.ConfigID != c.configID:
		return nil, invalid("ClientHelloOuter", "config_id", "changed after HelloRetryRequest")
	case e.CipherSuite != c.suite:
		return nil, invalid("ClientHelloOuter", "cipher_suite", "changed after HelloRetryRequest")
	case len(e.Enc) != 0:
		return nil, invalid("ClientHelloOuter", "enc", "must be empty after HelloRetryRequest")
	}
	pt, err := c.opener.Open(e.Payload, ClientHelloOuterAAD(outer2))
	if err != nil {
		return nil, &FieldError{Struct: "ClientHelloOuter", Field: "payload",
			Reason: "second ClientHello does not open with the first one's context", Err: ErrDecrypt}
	}
	return c.decode(outer2, e, pt)
}
