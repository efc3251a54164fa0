package ech

import (
	"bytes"
	"crypto/cipher"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/cloudflare/circl/hpke"
	"github.com/cloudflare/circl/kem"
)

// The SSLKEYLOGFILE format (RFC 9850 §3.2) logs ECH with two labels, both
// keyed by the ClientHelloOuter random: ECH_SECRET is the HPKE KEM shared
// secret (shared_secret of RFC 9180 §5.1.1) and ECH_CONFIG the ECHConfig the
// client sealed to. With both, anyone can run the HPKE key schedule
// (RFC 9180 §5.1, mode_base, info "tls ech\x00"||ECHConfig) and open the
// payload without the server's private key. That is what this file does.

// hpkeContext is an HPKE encryption context (RFC 9180 §5.2) computed from
// a shared secret: the AEAD key, base nonce and sequence number.
type hpkeContext struct {
	aead      cipher.AEAD
	baseNonce []byte
	seq       uint64
}

// newSecretContext runs KeySchedule(mode_base, sharedSecret, info, "", "")
// for the suite (kemID, suite.KDF, suite.AEAD).
func newSecretContext(kemID uint16, suite CipherSuite, sharedSecret, info []byte) (*hpkeContext, error) {
	kdf, aeadID := hpke.KDF(suite.KDF), hpke.AEAD(suite.AEAD)
	if !kdf.IsValid() || !aeadID.IsValid() {
		return nil, unsupported("ECH_SECRET", "cipher_suite", fmt.Sprintf("KDF %#04x / AEAD %#04x not supported", suite.KDF, suite.AEAD))
	}
	if len(sharedSecret) == 0 {
		return nil, invalid("ECH_SECRET", "secret", "empty")
	}
	id := make([]byte, 0, 10)
	id = append(id, "HPKE"...)
	id = binary.BigEndian.AppendUint16(id, kemID)
	id = binary.BigEndian.AppendUint16(id, suite.KDF)
	id = binary.BigEndian.AppendUint16(id, suite.AEAD)
	ls := labeled{kdf: kdf, suiteID: id}
	pskIDHash := ls.extract(nil, "psk_id_hash", nil)
	infoHash := ls.extract(nil, "info_hash", info)
	ksc := append(append([]byte{0x00}, pskIDHash...), infoHash...) // mode_base
	secret := ls.extract(sharedSecret, "secret", nil)
	key := ls.expand(secret, "key", ksc, aeadID.KeySize())
	a, err := aeadID.New(key)
	if err != nil {
		return nil, fmt.Errorf("ech: HPKE AEAD: %w", err)
	}
	return &hpkeContext{aead: a, baseNonce: ls.expand(secret, "base_nonce", ksc, aeadID.NonceSize())}, nil
}

// labeled holds what LabeledExtract and LabeledExpand (RFC 9180 §4) need.
type labeled struct {
	kdf     hpke.KDF
	suiteID []byte
}

func (l labeled) extract(salt []byte, label string, ikm []byte) []byte {
	in := append(append(append([]byte("HPKE-v1"), l.suiteID...), label...), ikm...)
	return l.kdf.Extract(in, salt)
}

func (l labeled) expand(prk []byte, label string, info []byte, n uint) []byte {
	in := binary.BigEndian.AppendUint16(nil, uint16(n))
	in = append(append(append(append(in, "HPKE-v1"...), l.suiteID...), label...), info...)
	return l.kdf.Expand(prk, in, n)
}

// nonce is base_nonce XOR the sequence number (RFC 9180 §5.2).
func (c *hpkeContext) nonce() []byte {
	n := append([]byte(nil), c.baseNonce...)
	var seq [8]byte
	binary.BigEndian.PutUint64(seq[:], c.seq)
	for i := range seq {
		n[len(n)-8+i] ^= seq[i]
	}
	return n
}

// Open decrypts one message and advances the sequence number.
func (c *hpkeContext) Open(ct, aad []byte) ([]byte, error) {
	pt, err := c.aead.Open(nil, c.nonce(), ct, aad)
	if err != nil {
		return nil, err
	}
	c.seq++
	return pt, nil
}

// OpenWithSecret decrypts the ECH payload of a ClientHelloOuter from the
// HPKE shared secret and the ECHConfig the client used (the ECH_SECRET and
// ECH_CONFIG lines of an SSLKEYLOGFILE), without the server's private key,
// and reconstructs ClientHelloInner. The returned Opened has no Key; its
// Context opens the ClientHello sent after a HelloRetryRequest. A secret
// that does not open the payload gives ErrDecrypt.
func OpenWithSecret(cfg *Config, sharedSecret []byte, outer *ClientHello) (*Opened, error) {
	e, err := outerECH(outer)
	if err != nil {
		return nil, err
	}
	hc, err := newSecretContext(cfg.KEM, e.CipherSuite, sharedSecret, hpkeInfo(cfg))
	if err != nil {
		return nil, err
	}
	pt, err := hc.Open(e.Payload, ClientHelloOuterAAD(outer))
	if err != nil {
		return nil, &FieldError{Struct: "ClientHelloOuter", Field: "encrypted_client_hello",
			Reason: "the logged ECH_SECRET and ECH_CONFIG do not open the payload", Err: ErrDecrypt}
	}
	ctx := &OpenContext{opener: hc, kem: cfg.KEM, configID: e.ConfigID, suite: e.CipherSuite}
	return ctx.decode(outer, e, pt)
}

// seedTap passes reads through and keeps the first ones: circl's HPKE
// sender reads its encapsulation seed, and nothing else, from the reader
// given to Setup.
type seedTap struct {
	r    io.Reader
	seed []byte
}

func (t *seedTap) Read(b []byte) (int, error) {
	n, err := t.r.Read(b)
	t.seed = append(t.seed, b[:n]...)
	return n, err
}

// sharedSecretOf re-runs the deterministic encapsulation from the seed the
// sender used and returns its shared secret, after checking that it gives
// the same enc (so the secret is the one the context was built from).
func sharedSecretOf(cfg *Config, pk kem.PublicKey, seed, enc []byte) ([]byte, error) {
	scheme := hpke.KEM(cfg.KEM).Scheme()
	if len(seed) != scheme.EncapsulationSeedSize() {
		return nil, fmt.Errorf("ech: HPKE setup read %d bytes of seed, want %d", len(seed), scheme.EncapsulationSeedSize())
	}
	enc2, ss, err := scheme.EncapsulateDeterministically(pk, seed)
	if err != nil {
		return nil, fmt.Errorf("ech: HPKE encapsulation: %w", err)
	}
	if !bytes.Equal(enc2, enc) {
		return nil, fmt.Errorf("ech: HPKE encapsulation is not reproducible from its seed")
	}
	return ss, nil
}
