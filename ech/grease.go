package ech

import (
	"crypto/rand"
	"fmt"
	"io"
	"slices"

	"github.com/cloudflare/circl/hpke"
	"golang.org/x/crypto/cryptobyte"
)

// GreaseOptions say what GREASE ECH extension to make (RFC 9849 §6.2). The
// zero value uses DHKEM(X25519) with HKDF-SHA256/AES-128-GCM, a
// maximum_name_length of 0 for the padding estimate, and crypto/rand.
type GreaseOptions struct {
	KEM               uint16      // whose enc size and format to imitate; 0 means X25519
	Suite             CipherSuite // zero means HKDF-SHA256 with AES-128-GCM
	MaximumNameLength uint8       // used to estimate the padded inner length
	PayloadLen        int         // if > 0, the exact payload length to send
	// Compress lists the extensions the imitated client compresses into
	// ech_outer_extensions; nil means GoCompressed, empty means none.
	Compress []uint16
	// KeepTLS12Extensions keeps GoInnerDropped in the imitated inner.
	KeepTLS12Extensions bool
	Rand                io.Reader
}

func (o *GreaseOptions) fill() GreaseOptions {
	g := GreaseOptions{}
	if o != nil {
		g = *o
	}
	if g.KEM == 0 {
		g.KEM = uint16(hpke.KEM_X25519_HKDF_SHA256)
	}
	if g.Suite == (CipherSuite{}) {
		g.Suite = CipherSuite{KDF: uint16(hpke.KDF_HKDF_SHA256), AEAD: uint16(hpke.AEAD_AES128GCM)}
	}
	if g.Rand == nil {
		g.Rand = rand.Reader
	}
	return g
}

// GreaseECHExtension returns the body of a GREASE encrypted_client_hello
// extension: a random config_id, the chosen cipher suite, a valid enc
// made by the KEM for a throwaway key, and a random payload of
// innerLen+C bytes, where C is the AEAD's expansion and innerLen the
// length of the padded EncodedClientHelloInner the client would send
// (ignored when opts.PayloadLen is set).
func GreaseECHExtension(opts *GreaseOptions, innerLen int) ([]byte, error) {
	o := opts.fill()
	if !hpke.AEAD(o.Suite.AEAD).IsValid() || !hpke.KDF(o.Suite.KDF).IsValid() {
		return nil, &FieldError{Struct: "GreaseOptions", Field: "Suite", Reason: "not supported by circl", Err: ErrUnsupported}
	}
	scheme, err := KEMScheme(o.KEM)
	if err != nil {
		return nil, err
	}
	seed := make([]byte, scheme.SeedSize()+scheme.EncapsulationSeedSize()+1)
	if _, err := io.ReadFull(o.Rand, seed); err != nil {
		return nil, fmt.Errorf("ech: reading randomness: %w", err)
	}
	pk, _ := scheme.DeriveKeyPair(seed[:scheme.SeedSize()])
	enc, _, err := scheme.EncapsulateDeterministically(pk, seed[scheme.SeedSize():len(seed)-1])
	if err != nil {
		return nil, fmt.Errorf("ech: GREASE enc: %w", err)
	}
	n := o.PayloadLen
	if n <= 0 {
		n = int(hpke.AEAD(o.Suite.AEAD).CipherLen(uint(innerLen)))
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(o.Rand, payload); err != nil {
		return nil, fmt.Errorf("ech: reading randomness: %w", err)
	}
	var b cryptobyte.Builder
	b.AddUint8(uint8(ECHOuter))
	b.AddUint16(o.Suite.KDF)
	b.AddUint16(o.Suite.AEAD)
	b.AddUint8(seed[len(seed)-1]) // random config_id
	addU16Bytes(&b, enc)
	addU16Bytes(&b, payload)
	return b.Bytes()
}

// GreaseClientHello returns base (a ClientHello handshake message) with a
// GREASE encrypted_client_hello extension set in place of any it had. The
// payload is as long as the one crypto/tls would seal from base as its
// ClientHelloInner (RFC 9849 §6.2: a GREASE payload should be as long as
// a real one): the TLS 1.2-only extensions left out (GoInnerDropped), the
// longest run of GoCompressed extensions replaced by ech_outer_extensions,
// §6.1.3 padding with opts.MaximumNameLength, plus the AEAD tag.
// opts.Compress and opts.KeepTLS12Extensions imitate another client.
func GreaseClientHello(base []byte, opts *GreaseOptions) (*ClientHello, error) {
	ch, err := ParseClientHello(base)
	if err != nil {
		return nil, err
	}
	o := opts.fill()
	encoded, err := greaseInner(ch, &o)
	if err != nil {
		return nil, err
	}
	innerLen := len(encoded) + recommendedPadding(ch.ServerName, len(encoded), int(o.MaximumNameLength))
	ext, err := GreaseECHExtension(&o, innerLen)
	if err != nil {
		return nil, err
	}
	ch.SetExtension(ExtEncryptedHello, ext)
	raw, err := ch.Marshal()
	if err != nil {
		return nil, err
	}
	return ParseClientHello(raw)
}

// GoCompressed are the extensions crypto/tls (Go 1.24 to 1.26,
// clientHelloMsg.marshalMsg) moves into ech_outer_extensions when it
// encodes its ClientHelloInner.
var GoCompressed = []uint16{ExtStatusRequest, ExtSupportedGroups, ExtSignatureAlgorithms, ExtSigAlgsCert,
	ExtALPN, ExtSupportedVersions, ExtCookie, ExtKeyShare, ExtPSKModes}

// GoInnerDropped are the TLS 1.2-only extensions crypto/tls leaves out of
// its ClientHelloInner.
var GoInnerDropped = []uint16{ExtECPointFormats, ExtSessionTicket, ExtRenegotiationInfo, ExtExtendedMasterSec}

// greaseInner returns the EncodedClientHelloInner (unpadded) a client
// would make from ch.
func greaseInner(ch *ClientHello, o *GreaseOptions) ([]byte, error) {
	inner := *ch
	inner.Extensions = nil
	for _, e := range ch.Extensions {
		if e.Type == ExtEncryptedHello || (!o.KeepTLS12Extensions && slices.Contains(GoInnerDropped, e.Type)) {
			continue
		}
		inner.Extensions = append(inner.Extensions, e)
	}
	inner.Extensions = append(inner.Extensions, HelloExtension{Type: ExtEncryptedHello, Data: []byte{byte(ECHInner)}})
	compress := o.Compress
	if compress == nil {
		compress = GoCompressed
	}
	return EncodeClientHelloInner(&inner, longestRun(inner.Extensions, compress), 0)
}

// longestRun returns the types of the longest run of consecutive
// extensions that are all in set (ech_outer_extensions must name a
// contiguous run of the outer ClientHello's extensions).
func longestRun(exts []HelloExtension, set []uint16) []uint16 {
	var best, cur []uint16
	for _, e := range exts {
		if !slices.Contains(set, e.Type) || slices.Contains(cur, e.Type) {
			cur = nil
			if !slices.Contains(set, e.Type) {
				continue
			}
		}
		cur = append(cur, e.Type)
		if len(cur) > len(best) {
			best = slices.Clone(cur)
		}
	}
	return best
}

// greasePSK makes a GREASE pre_shared_key for ClientHelloOuter (RFC 9849
// §6.1.2): random identities, ages and binders of the inner one's lengths.
func greasePSK(psk *PreSharedKey, r io.Reader) ([]byte, error) {
	if psk == nil {
		return nil, invalid("ClientHelloInner", "pre_shared_key", "unparsed")
	}
	var rerr error
	rnd := func(n int) []byte {
		b := make([]byte, n)
		if _, err := io.ReadFull(r, b); err != nil {
			rerr = err
		}
		return b
	}
	var b cryptobyte.Builder
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, id := range psk.Identities {
			addU16Bytes(b, rnd(len(id.Identity)))
			b.AddBytes(rnd(4))
		}
	})
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, bind := range psk.Binders {
			addU8Bytes(b, rnd(len(bind)))
		}
	})
	if rerr != nil {
		return nil, fmt.Errorf("ech: reading randomness: %w", rerr)
	}
	return b.Bytes()
}
