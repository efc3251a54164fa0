package ech

import (
	"crypto/rand"
	"fmt"
	"io"
	"slices"

	"github.com/cloudflare/circl/hpke"
	"github.com/cloudflare/circl/kem"
	"golang.org/x/crypto/cryptobyte"
)

// SealOptions tune Seal. The zero value uses the config's first cipher
// suite that circl implements, the recommended padding, no compression,
// crypto/rand, and copies every inner extension to the outer ClientHello
// except server_name (public_name), encrypted_client_hello (outer variant)
// and pre_shared_key (replaced by a GREASE PSK, §6.1.2).
type SealOptions struct {
	Suite          *CipherSuite // must be one of the config's suites
	Padding        Padding
	Compress       []uint16   // extension types to put in ech_outer_extensions (copied to the outer unchanged)
	DropFromOuter  []uint16   // extension types not copied to ClientHelloOuter
	OuterKeyShares []KeyShare // replace the outer key_share (caller holds the private keys)
	RandomConfigID bool       // send a random config_id (§10.4)
	Rand           io.Reader  // nil means crypto/rand
}

// Sealed is a ClientHelloOuter made by Seal and what went into it.
type Sealed struct {
	Outer        *ClientHello // Raw is the handshake message
	Record       []byte       // Outer.Raw as TLS records (version 0x0301, or 0x0303 after an HRR)
	Inner        *ClientHello // ClientHelloInner as the server will reconstruct it
	EncodedInner []byte
	Enc          []byte
	ConfigID     uint8
	Suite        CipherSuite
	PaddingLen   int
	Context      *SealContext // for the second ClientHello after an HRR
	// SharedSecret is the HPKE KEM shared secret of the context (RFC 9180
	// §5.1.1): the value an SSLKEYLOGFILE logs as ECH_SECRET (RFC 9850),
	// with which OpenWithSecret opens the payload. Keep it secret.
	SharedSecret []byte
}

// SealContext is the HPKE sender context of one ECH handshake. It is not
// safe for concurrent use.
type SealContext struct {
	sealer   hpke.Sealer
	cfg      *Config
	opts     SealOptions
	configID uint8
	suite    CipherSuite
	enc      []byte
	random   []byte // ClientHelloOuter.random, reused in the second flight
	secret   []byte // the HPKE KEM shared secret (RFC 9850's ECH_SECRET)
}

// Seal encrypts a ClientHelloInner (a handshake message with its header)
// to cfg and builds the ClientHelloOuter (RFC 9849 §6.1). If inner has no
// encrypted_client_hello extension, one of type inner is added first (see
// Sealed.Inner for the message to use in the transcript).
func Seal(cfg *Config, inner []byte, opts *SealOptions) (*Sealed, error) {
	c := &SealContext{cfg: cfg, configID: cfg.ConfigID}
	if opts != nil {
		c.opts = *opts
	}
	if c.opts.Rand == nil {
		c.opts.Rand = rand.Reader
	}
	suite, err := pickSuite(cfg, c.opts.Suite)
	if err != nil {
		return nil, err
	}
	c.suite = suite
	pk, err := publicKey(cfg)
	if err != nil {
		return nil, err
	}
	s, err := hpke.NewSuite(hpke.KEM(cfg.KEM), hpke.KDF(suite.KDF), hpke.AEAD(suite.AEAD)).NewSender(pk, hpkeInfo(cfg))
	if err != nil {
		return nil, fmt.Errorf("ech: HPKE sender: %w", err)
	}
	tap := &seedTap{r: c.opts.Rand}
	if c.enc, c.sealer, err = s.Setup(tap); err != nil {
		return nil, fmt.Errorf("ech: HPKE setup: %w", err)
	}
	if c.secret, err = sharedSecretOf(cfg, pk, tap.seed, c.enc); err != nil {
		return nil, err
	}
	c.random = make([]byte, 32)
	if _, err := io.ReadFull(c.opts.Rand, c.random); err != nil {
		return nil, fmt.Errorf("ech: reading randomness: %w", err)
	}
	if c.opts.RandomConfigID {
		var id [1]byte
		if _, err := io.ReadFull(c.opts.Rand, id[:]); err != nil {
			return nil, fmt.Errorf("ech: reading randomness: %w", err)
		}
		c.configID = id[0]
	}
	return c.seal(inner, c.enc)
}

// SealSecond seals the second ClientHelloInner, sent after a
// HelloRetryRequest, with the same HPKE context: same config_id, cipher
// suite and outer random, empty enc (§6.1.5).
func (c *SealContext) SealSecond(inner2 []byte) (*Sealed, error) {
	return c.seal(inner2, nil)
}

func pickSuite(cfg *Config, want *CipherSuite) (CipherSuite, error) {
	for _, cs := range cfg.CipherSuites {
		if want != nil && cs != *want {
			continue
		}
		if hpke.KDF(cs.KDF).IsValid() && hpke.AEAD(cs.AEAD).IsValid() {
			return cs, nil
		}
	}
	return CipherSuite{}, &FieldError{Struct: "ECHConfig", Field: "cipher_suites",
		Reason: "no usable cipher suite (or the requested one is not offered)", Err: ErrUnsupported}
}

func publicKey(cfg *Config) (kem.PublicKey, error) {
	scheme, err := KEMScheme(cfg.KEM)
	if err != nil {
		return nil, err
	}
	pub, err := scheme.UnmarshalBinaryPublicKey(cfg.PublicKey)
	if err != nil {
		return nil, &FieldError{Struct: "ECHConfig", Field: "public_key", Reason: err.Error(), Err: ErrInvalid}
	}
	return pub, nil
}

func (c *SealContext) seal(innerMsg []byte, enc []byte) (*Sealed, error) {
	inner, err := markInner(innerMsg)
	if err != nil {
		return nil, err
	}
	encoded, err := EncodeClientHelloInner(inner, c.opts.Compress, 0)
	if err != nil {
		return nil, err
	}
	pad, err := c.opts.Padding.Length(inner, len(encoded), c.cfg.MaximumNameLength)
	if err != nil {
		return nil, err
	}
	ctLen, err := c.payloadLen(len(encoded), pad)
	if err != nil {
		return nil, err
	}
	encoded = append(encoded, make([]byte, pad)...)
	outer, err := c.outerHello(inner, enc, ctLen)
	if err != nil {
		return nil, err
	}
	e := outer.ECH
	ct, err := c.sealer.Seal(encoded, ClientHelloOuterAAD(outer))
	if err != nil {
		return nil, fmt.Errorf("ech: HPKE seal: %w", err)
	}
	raw := slices.Clone(outer.Raw)
	copy(raw[e.PayloadOffset:], ct)
	if outer, err = ParseClientHello(raw); err != nil {
		return nil, err
	}
	vers := uint16(0x0301)
	if enc == nil { // second flight
		vers = 0x0303
	}
	return &Sealed{Outer: outer, Record: MarshalRecordsVersion(outer.Raw, vers), Inner: inner, EncodedInner: encoded,
		Enc: enc, ConfigID: c.configID, Suite: c.suite, PaddingLen: pad, Context: c, SharedSecret: c.secret}, nil
}

// maxU16 is the most a 2-byte length prefix can count: the bound on the ECH
// payload and on the outer ClientHello's extensions.
const maxU16 = 0xffff

// payloadLen returns the length of the ECH payload for an encoded inner
// ClientHello of n bytes plus pad bytes of padding, or an error naming
// the payload when padding (PaddingFixed or PaddingBlock with a large
// Size) or the inner ClientHello make it longer than a 2-byte length. It
// checks before anything that large is allocated.
func (c *SealContext) payloadLen(n, pad int) (int, error) {
	if pad > maxU16 || n+pad > maxU16 {
		return 0, oversize("encrypted_client_hello.payload", max(pad, n+pad))
	}
	ctLen := int(hpke.AEAD(c.suite.AEAD).CipherLen(uint(n + pad)))
	if ctLen > maxU16 {
		return 0, oversize("encrypted_client_hello.payload", ctLen)
	}
	return ctLen, nil
}

// oversize reports a ClientHelloOuter field that would be n bytes, more
// than its 2-byte length allows.
func oversize(field string, n int) error {
	return &FieldError{Struct: "ClientHelloOuter", Field: field, Err: ErrInvalid,
		Reason: fmt.Sprintf("would be %d bytes, more than the %d a 2-byte length allows (padding or inner ClientHello too large)", n, maxU16)}
}

// markInner parses the inner ClientHello and adds an encrypted_client_hello
// of type inner if it has none.
func markInner(msg []byte) (*ClientHello, error) {
	inner, err := ParseClientHello(msg)
	if err != nil {
		return nil, err
	}
	if inner.ECH != nil {
		return inner, checkInner(inner)
	}
	inner.SetExtension(ExtEncryptedHello, []byte{byte(ECHInner)})
	raw, err := inner.Marshal()
	if err != nil {
		return nil, err
	}
	if inner, err = ParseClientHello(raw); err != nil {
		return nil, err
	}
	return inner, checkInner(inner)
}

// outerHello builds ClientHelloOuter with a zero payload of ctLen bytes.
func (c *SealContext) outerHello(inner *ClientHello, enc []byte, ctLen int) (*ClientHello, error) {
	o := &ClientHello{Version: inner.Version, Random: c.random, SessionID: inner.SessionID,
		CipherSuites: inner.CipherSuites, CompressionMethods: inner.CompressionMethods}
	var b cryptobyte.Builder
	b.AddUint8(uint8(ECHOuter))
	b.AddUint16(c.suite.KDF)
	b.AddUint16(c.suite.AEAD)
	b.AddUint8(c.configID)
	addU16Bytes(&b, enc)
	addU16Bytes(&b, make([]byte, ctLen))
	echExt := b.BytesOrPanic()
	for _, e := range inner.Extensions {
		compressed := slices.Contains(c.opts.Compress, e.Type)
		switch {
		case e.Type == ExtServerName:
			e.Data = serverNameExt(c.cfg.PublicName)
		case e.Type == ExtEncryptedHello:
			e.Data = echExt
		case e.Type == ExtKeyShare && c.opts.OuterKeyShares != nil && !compressed:
			e.Data = keyShareExt(c.opts.OuterKeyShares)
		case e.Type == ExtPreSharedKey && !compressed:
			d, err := greasePSK(inner.PreSharedKey, c.opts.Rand)
			if err != nil {
				return nil, err
			}
			e.Data = d
		case slices.Contains(c.opts.DropFromOuter, e.Type) && !compressed:
			continue
		}
		o.Extensions = append(o.Extensions, HelloExtension{Type: e.Type, Data: e.Data})
	}
	if inner.ServerName == "" {
		o.Extensions = append([]HelloExtension{{Type: ExtServerName, Data: serverNameExt(c.cfg.PublicName)}}, o.Extensions...)
	}
	n := 0
	for _, e := range o.Extensions {
		n += 4 + len(e.Data)
	}
	if n > maxU16 {
		return nil, oversize("extensions", n)
	}
	raw, err := o.Marshal()
	if err != nil {
		return nil, err
	}
	return ParseClientHello(raw)
}

func serverNameExt(name string) []byte {
	var b cryptobyte.Builder
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		b.AddUint8(0) // host_name
		addU16Bytes(b, []byte(name))
	})
	return b.BytesOrPanic()
}

func keyShareExt(shares []KeyShare) []byte {
	var b cryptobyte.Builder
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, ks := range shares {
			b.AddUint16(ks.Group)
			addU16Bytes(b, ks.Data)
		}
	})
	return b.BytesOrPanic()
}
