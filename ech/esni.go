package ech

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"time"

	"golang.org/x/crypto/cryptobyte"
)

// ESNI (draft-ietf-tls-esni-02/-03) is ECH's retired predecessor: it
// encrypted only the server_name, under keys published in DNS as an
// ESNIKeys structure. echlab implements it at the level of keys, DNS values
// and ClientHello bytes; no maintained TLS library completes an ESNI
// handshake.

// ESNIKeys versions.
const (
	// ESNIVersionDraft02 is the ESNIKeys version of draft-ietf-tls-esni-01
	// and -02, the one Firefox and Cloudflare deployed in TXT records at
	// _esni.NAME. It has no public_name.
	ESNIVersionDraft02 uint16 = 0xff01
	// ESNIVersionDraft03 is the ESNIKeys version of draft-ietf-tls-esni-03,
	// which adds public_name.
	ESNIVersionDraft03 uint16 = 0xff02
)

// ESNI code points.
const (
	// ExtEncryptedServerName is the encrypted_server_name TLS extension.
	ExtEncryptedServerName uint16 = 0xffce
	// ESNIExtAddressSet is the mandatory address_set ESNIKeys extension
	// (draft-03 §4.2.1).
	ESNIExtAddressSet uint16 = 0x1001
	// RRTypeESNI is the ESNI DNS RR type draft-03 requested (0xff9f); the
	// deployed form is a TXT record at _esni.NAME.
	RRTypeESNI uint16 = 0xff9f
)

// ESNI errors. Each also matches the broader sentinel named in its comment
// with errors.Is.
var (
	// ErrESNIChecksum: the ESNIKeys checksum does not match (ErrInvalid).
	ErrESNIChecksum error = &subError{"ech: ESNIKeys checksum mismatch", ErrInvalid}
	// ErrESNIExpired: now is outside [not_before, not_after] (ErrInvalid).
	ErrESNIExpired error = &subError{"ech: ESNIKeys outside their validity period", ErrInvalid}
	// ErrESNIDigest: record_digest matches no known ESNIKeys (ErrInvalid).
	ErrESNIDigest error = &subError{"ech: ESNI record_digest matches no known ESNIKeys", ErrInvalid}
	// ErrESNIPadding: the decrypted PaddedServerNameList is not
	// padded_length long or its padding is not zeros (ErrInvalid).
	ErrESNIPadding error = &subError{"ech: bad ESNI padding", ErrInvalid}
)

// ESNIKeys is the structure a server publishes for ESNI (draft-03 §4.1).
// Raw keeps the bytes it was parsed from (or last marshalled to): the
// checksum and record_digest are computed over them.
type ESNIKeys struct {
	Raw          []byte
	Version      uint16
	Checksum     [4]byte
	PublicName   string     // draft-03 (0xff02) only
	Keys         []KeyShare // one per group
	CipherSuites []uint16   // TLS 1.3 cipher suites
	PaddedLength uint16
	NotBefore    uint64 // seconds since the Unix epoch
	NotAfter     uint64
	Extensions   []Extension
}

// ParseESNIKeys parses exactly one ESNIKeys structure. It checks syntax
// only: call Validate for the checksum, validity period and extensions.
// Unknown versions give a FieldError wrapping ErrUnsupported, since their
// layout is unknown.
func ParseESNIKeys(b []byte) (*ESNIKeys, error) {
	s := cryptobyte.String(b)
	k, err := readESNIKeys(&s)
	if err != nil {
		return nil, err
	}
	if !s.Empty() {
		return nil, invalid("ESNIKeys", "extensions", "trailing bytes after the structure")
	}
	return k, nil
}

// ParseESNIKeysList parses one or more ESNIKeys structures placed one after
// the other, as an ESNI RR with several values holds them.
func ParseESNIKeysList(b []byte) ([]*ESNIKeys, error) {
	s := cryptobyte.String(b)
	var out []*ESNIKeys
	for !s.Empty() || out == nil {
		k, err := readESNIKeys(&s)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, nil
}

func readESNIKeys(s *cryptobyte.String) (*ESNIKeys, error) {
	const st = "ESNIKeys"
	start := *s
	k := &ESNIKeys{}
	if !s.ReadUint16(&k.Version) {
		return nil, malformed(st, "version")
	}
	if k.Version != ESNIVersionDraft02 && k.Version != ESNIVersionDraft03 {
		return nil, unsupported(st, "version", fmt.Sprintf("%#04x (known: 0xff01, 0xff02)", k.Version))
	}
	if !s.CopyBytes(k.Checksum[:]) {
		return nil, malformed(st, "checksum")
	}
	if k.Version == ESNIVersionDraft03 {
		var name cryptobyte.String
		if !s.ReadUint16LengthPrefixed(&name) || len(name) == 0 {
			return nil, malformed(st, "public_name")
		}
		k.PublicName = string(name)
	}
	var keys, suites cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&keys) || len(keys) < 4 {
		return nil, malformed(st, "keys")
	}
	var ok bool
	if k.Keys, ok = readKeyShareList(keys); !ok {
		return nil, malformed(st, "keys")
	}
	if !s.ReadUint16LengthPrefixed(&suites) || len(suites) < 2 || len(suites)%2 != 0 {
		return nil, malformed(st, "cipher_suites")
	}
	for !suites.Empty() {
		var cs uint16
		suites.ReadUint16(&cs)
		k.CipherSuites = append(k.CipherSuites, cs)
	}
	if !s.ReadUint16(&k.PaddedLength) {
		return nil, malformed(st, "padded_length")
	}
	if !s.ReadUint64(&k.NotBefore) || !s.ReadUint64(&k.NotAfter) {
		return nil, malformed(st, "not_before")
	}
	if k.Extensions, ok = readESNIExtensions(s); !ok {
		return nil, malformed(st, "extensions")
	}
	k.Raw = append([]byte(nil), start[:len(start)-len(*s)]...)
	return k, nil
}

// readKeyShareList reads KeyShareEntry values until list is empty.
func readKeyShareList(list cryptobyte.String) ([]KeyShare, bool) {
	var out []KeyShare
	for !list.Empty() {
		var ks KeyShare
		var data cryptobyte.String
		if !list.ReadUint16(&ks.Group) || !list.ReadUint16LengthPrefixed(&data) || len(data) == 0 {
			return nil, false
		}
		ks.Data = append([]byte(nil), data...)
		out = append(out, ks)
	}
	return out, true
}

func readESNIExtensions(s *cryptobyte.String) ([]Extension, bool) {
	var exts cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&exts) {
		return nil, false
	}
	var out []Extension
	for !exts.Empty() {
		var e Extension
		var data cryptobyte.String
		if !exts.ReadUint16(&e.Type) || !exts.ReadUint16LengthPrefixed(&data) {
			return nil, false
		}
		e.Data = append([]byte(nil), data...)
		out = append(out, e)
	}
	return out, true
}

// Marshal encodes the fields (with Checksum as it is) and stores the result
// in Raw. A structure parsed by ParseESNIKeys marshals to the same bytes.
func (k *ESNIKeys) Marshal() ([]byte, error) {
	if k.Version != ESNIVersionDraft02 && k.Version != ESNIVersionDraft03 {
		return nil, unsupported("ESNIKeys", "version", fmt.Sprintf("%#04x", k.Version))
	}
	if k.Version == ESNIVersionDraft03 && k.PublicName == "" {
		return nil, invalid("ESNIKeys", "public_name", "empty (required by version 0xff02)")
	}
	if k.Version == ESNIVersionDraft02 && k.PublicName != "" {
		return nil, invalid("ESNIKeys", "public_name", "version 0xff01 has no public_name")
	}
	if len(k.Keys) == 0 || len(k.CipherSuites) == 0 {
		return nil, invalid("ESNIKeys", "keys", "keys and cipher_suites must not be empty")
	}
	var b cryptobyte.Builder
	b.AddUint16(k.Version)
	b.AddBytes(k.Checksum[:])
	if k.Version == ESNIVersionDraft03 {
		addU16Bytes(&b, []byte(k.PublicName))
	}
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { addKeyShares(b, k.Keys) })
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, cs := range k.CipherSuites {
			b.AddUint16(cs)
		}
	})
	b.AddUint16(k.PaddedLength)
	b.AddUint64(k.NotBefore)
	b.AddUint64(k.NotAfter)
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, e := range k.Extensions {
			b.AddUint16(e.Type)
			addU16Bytes(b, e.Data)
		}
	})
	out, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("ech: marshal ESNIKeys: %w", err)
	}
	k.Raw = out
	return out, nil
}

func addKeyShares(b *cryptobyte.Builder, keys []KeyShare) {
	for _, ks := range keys {
		b.AddUint16(ks.Group)
		addU16Bytes(b, ks.Data)
	}
}

// ComputeChecksum returns the first 4 bytes of SHA-256 over the marshalled
// structure with the checksum field set to zero (draft-03 §4.1).
func (k *ESNIKeys) ComputeChecksum() ([4]byte, error) {
	saved := k.Checksum
	k.Checksum = [4]byte{}
	raw, err := k.Marshal()
	k.Checksum = saved
	if err != nil {
		return [4]byte{}, err
	}
	sum := sha256.Sum256(raw)
	return [4]byte(sum[:4]), nil
}

// SetChecksum computes the checksum, stores it and re-marshals Raw.
func (k *ESNIKeys) SetChecksum() error {
	sum, err := k.ComputeChecksum()
	if err != nil {
		return err
	}
	k.Checksum = sum
	_, err = k.Marshal()
	return err
}

// CheckChecksum verifies the checksum over Raw (the bytes as received).
func (k *ESNIKeys) CheckChecksum() error {
	if len(k.Raw) < 6 {
		return malformed("ESNIKeys", "checksum")
	}
	zeroed := append([]byte(nil), k.Raw...)
	copy(zeroed[2:6], []byte{0, 0, 0, 0})
	sum := sha256.Sum256(zeroed)
	if subtle.ConstantTimeCompare(sum[:4], k.Raw[2:6]) != 1 {
		return &FieldError{Struct: "ESNIKeys", Field: "checksum",
			Reason: fmt.Sprintf("is %x, SHA-256 gives %x", k.Raw[2:6], sum[:4]), Err: ErrESNIChecksum}
	}
	return nil
}

// CheckValidity reports ErrESNIExpired unless not_before <= now <= not_after.
func (k *ESNIKeys) CheckValidity(now time.Time) error {
	t := now.Unix()
	if t < 0 || uint64(t) < k.NotBefore {
		return &FieldError{Struct: "ESNIKeys", Field: "not_before",
			Reason: "not yet valid at " + now.UTC().Format(time.RFC3339), Err: ErrESNIExpired}
	}
	if uint64(t) > k.NotAfter {
		return &FieldError{Struct: "ESNIKeys", Field: "not_after",
			Reason: "expired at " + now.UTC().Format(time.RFC3339), Err: ErrESNIExpired}
	}
	return nil
}

// Validate applies the client's checks of draft-03 §4.1: checksum,
// validity at now, one key per group, and no mandatory extension (high bit
// set) other than address_set, whose body must parse.
func (k *ESNIKeys) Validate(now time.Time) error {
	if err := k.CheckChecksum(); err != nil {
		return err
	}
	if err := k.CheckValidity(now); err != nil {
		return err
	}
	seen := map[uint16]bool{}
	for _, ks := range k.Keys {
		if seen[ks.Group] {
			return invalid("ESNIKeys", "keys", fmt.Sprintf("two keys for group %#04x", ks.Group))
		}
		seen[ks.Group] = true
	}
	for _, e := range k.Extensions {
		if e.Type == ESNIExtAddressSet {
			if _, err := ParseAddressSet(e.Data); err != nil {
				return err
			}
		} else if e.Mandatory() {
			return unsupported("ESNIKeys", "extensions", fmt.Sprintf("unknown mandatory extension %#04x", e.Type))
		}
	}
	return nil
}

// NotBeforeTime returns not_before as a time.
func (k *ESNIKeys) NotBeforeTime() time.Time { return unixTime(k.NotBefore) }

// NotAfterTime returns not_after as a time.
func (k *ESNIKeys) NotAfterTime() time.Time { return unixTime(k.NotAfter) }

func unixTime(v uint64) time.Time {
	if v > 1<<62 {
		v = 1 << 62 // out of time.Time's range: clamp instead of wrapping
	}
	return time.Unix(int64(v), 0).UTC()
}

// KeyShare returns the key of the given group, if published.
func (k *ESNIKeys) KeyShare(group uint16) (KeyShare, bool) {
	for _, ks := range k.Keys {
		if ks.Group == group {
			return ks, true
		}
	}
	return KeyShare{}, false
}
