package ech

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"time"
)

// TLS named groups ESNI keys can use (IANA "TLS Supported Groups").
const (
	GroupP256   uint16 = 0x0017 // secp256r1
	GroupP384   uint16 = 0x0018 // secp384r1
	GroupP521   uint16 = 0x0019 // secp521r1
	GroupX25519 uint16 = 0x001d // x25519
)

// esniGroups maps each supported group to its curve and to the HPKE KEM id
// whose PKCS#8 encoding (MarshalPKCS8) stores its private key.
var esniGroups = map[uint16]struct {
	curve ecdh.Curve
	kem   uint16
	name  string
}{
	GroupX25519: {ecdh.X25519(), KEMX25519HKDFSHA256, "x25519"},
	GroupP256:   {ecdh.P256(), KEMP256HKDFSHA256, "secp256r1"},
	GroupP384:   {ecdh.P384(), KEMP384HKDFSHA384, "secp384r1"},
	GroupP521:   {ecdh.P521(), KEMP521HKDFSHA512, "secp521r1"},
}

// GroupName returns the IANA name of a TLS named group, or its number.
func GroupName(g uint16) string {
	if e, ok := esniGroups[g]; ok {
		return e.name
	}
	if IsGREASE(g) {
		return "GREASE"
	}
	return fmt.Sprintf("unknown(%#04x)", g)
}

func esniCurve(group uint16) (ecdh.Curve, error) {
	e, ok := esniGroups[group]
	if !ok {
		return nil, unsupported("KeyShareEntry", "group", fmt.Sprintf("%#04x (supported: x25519, secp256r1/384r1/521r1)", group))
	}
	return e.curve, nil
}

// generateECDH makes a private key of the group from r, so that an
// injected reader gives reproducible keys (crypto/ecdh.GenerateKey may
// ignore its reader).
func generateECDH(group uint16, r io.Reader) (*ecdh.PrivateKey, error) {
	curve, err := esniCurve(group)
	if err != nil {
		return nil, err
	}
	size := map[uint16]int{GroupX25519: 32, GroupP256: 32, GroupP384: 48, GroupP521: 66}[group]
	buf := make([]byte, size)
	for range 64 {
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, fmt.Errorf("ech: reading randomness: %w", err)
		}
		if group == GroupP521 {
			buf[0] &= 1 // 521 bits
		}
		if k, err := curve.NewPrivateKey(buf); err == nil {
			return k, nil
		}
	}
	return nil, fmt.Errorf("ech: no valid %s scalar after 64 tries", GroupName(group))
}

// ESNIKeyOptions configures GenerateESNIKeys. The zero value works: one
// X25519 key, TLS_AES_128_GCM_SHA256, version 0xff02 with public name
// public.lab.test, padded_length 260, valid for 24 h from now.
type ESNIKeyOptions struct {
	Version      uint16        // ESNIVersionDraft03 (default) or ESNIVersionDraft02
	PublicName   string        // draft-03 only; default "public.lab.test"
	Groups       []uint16      // default {GroupX25519}
	CipherSuites []uint16      // default {TLS_AES_128_GCM_SHA256}
	PaddedLength uint16        // default 260 (wildcard-capable, per the draft)
	Valid        time.Duration // default 24 h
	AddressSet   []netip.Addr  // if set, adds the address_set extension
	Now          func() time.Time
	Rand         io.Reader
}

func (o ESNIKeyOptions) fill() ESNIKeyOptions {
	if o.Version == 0 {
		o.Version = ESNIVersionDraft03
	}
	if o.PublicName == "" && o.Version == ESNIVersionDraft03 {
		o.PublicName = "public.lab.test"
	}
	if len(o.Groups) == 0 {
		o.Groups = []uint16{GroupX25519}
	}
	if len(o.CipherSuites) == 0 {
		o.CipherSuites = []uint16{TLSAES128GCMSHA256}
	}
	if o.PaddedLength == 0 {
		o.PaddedLength = 260
	}
	if o.Valid == 0 {
		o.Valid = 24 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	return o
}

// ESNIKeySet is a published ESNIKeys structure with the private key of
// each of its key shares, in the order of Keys.Keys.
type ESNIKeySet struct {
	Keys    *ESNIKeys
	Private []*ecdh.PrivateKey
}

// GenerateESNIKeys makes fresh key shares and the ESNIKeys structure that
// publishes them, checksum set.
func GenerateESNIKeys(o ESNIKeyOptions) (*ESNIKeySet, error) {
	o = o.fill()
	if o.Valid < 0 {
		return nil, invalid("ESNIKeys", "not_after", "negative validity")
	}
	for _, cs := range o.CipherSuites {
		if _, err := esniAEAD(cs); err != nil {
			return nil, err
		}
	}
	now := o.Now()
	k := &ESNIKeys{Version: o.Version, PublicName: o.PublicName, PaddedLength: o.PaddedLength,
		CipherSuites: append([]uint16(nil), o.CipherSuites...),
		NotBefore:    uint64(now.Unix()), NotAfter: uint64(now.Add(o.Valid).Unix())}
	if o.Version == ESNIVersionDraft02 {
		k.PublicName = ""
	}
	set := &ESNIKeySet{Keys: k}
	for _, g := range o.Groups {
		if _, dup := k.KeyShare(g); dup {
			return nil, invalid("ESNIKeys", "keys", "group "+GroupName(g)+" listed twice")
		}
		priv, err := generateECDH(g, o.Rand)
		if err != nil {
			return nil, err
		}
		k.Keys = append(k.Keys, KeyShare{Group: g, Data: priv.PublicKey().Bytes()})
		set.Private = append(set.Private, priv)
	}
	if len(o.AddressSet) > 0 {
		body, err := MarshalAddressSet(o.AddressSet)
		if err != nil {
			return nil, err
		}
		k.Extensions = append(k.Extensions, Extension{Type: ESNIExtAddressSet, Data: body})
	}
	if err := k.SetChecksum(); err != nil {
		return nil, err
	}
	return set, nil
}

// TXT returns the base64 value for the _esni.NAME TXT record.
func (s *ESNIKeySet) TXT() string { return s.Keys.TXT() }

// PrivateKey returns the private key for the given group, or nil.
func (s *ESNIKeySet) PrivateKey(group uint16) *ecdh.PrivateKey {
	for i, ks := range s.Keys.Keys {
		if ks.Group == group && i < len(s.Private) {
			return s.Private[i]
		}
	}
	return nil
}

// Check verifies that there is one private key per key share and that
// each matches the published public key.
func (s *ESNIKeySet) Check() error {
	if s.Keys == nil || len(s.Private) != len(s.Keys.Keys) {
		return invalid("ESNIKeySet", "private_keys", "not one private key per key share")
	}
	for i, ks := range s.Keys.Keys {
		if string(s.Private[i].PublicKey().Bytes()) != string(ks.Data) {
			return invalid("ESNIKeySet", "private_keys", "key for "+GroupName(ks.Group)+" does not match key_exchange")
		}
	}
	return nil
}

// File names of an ESNI key directory.
const (
	ESNIKeyFile = "esni.pem" // 0600: ESNIKEYS block, then one PRIVATE KEY block per key share
	ESNITXTFile = "esni.txt" // 0644: the TXT record value
	PEMESNIKeys = "ESNIKEYS" // PEM block type of the ESNIKeys structure
)

// SaveESNIKeys writes the set into dir (created 0700 if missing): esni.pem
// with mode 0600 and esni.txt with the TXT value. Files are written to a
// temporary name and renamed.
func SaveESNIKeys(dir string, s *ESNIKeySet) error {
	if err := s.Check(); err != nil {
		return err
	}
	out := pem.EncodeToMemory(&pem.Block{Type: PEMESNIKeys, Bytes: s.Keys.Raw})
	for i, ks := range s.Keys.Keys {
		der, err := MarshalPKCS8(esniGroups[ks.Group].kem, s.Private[i].Bytes())
		if err != nil {
			return err
		}
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: PEMPrivateKey, Bytes: der})...)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("ech: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(dir, ESNIKeyFile), out, 0o600); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, ESNITXTFile), []byte(s.TXT()+"\n"), 0o644)
}

// LoadESNIKeys reads a directory written by SaveESNIKeys (or the esni.pem
// file itself).
func LoadESNIKeys(path string) (*ESNIKeySet, error) {
	if info, err := os.Stat(path); err == nil && info.IsDir() {
		path = filepath.Join(path, ESNIKeyFile)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ech: %w", err)
	}
	return ParseESNIKeyPEM(data)
}

// ParseESNIKeyPEM decodes the esni.pem format: an ESNIKEYS block followed
// by one PRIVATE KEY block per key share, in the order of the keys.
func ParseESNIKeyPEM(data []byte) (*ESNIKeySet, error) {
	bad := func(reason string) error {
		return &FieldError{Struct: "ESNIKeyPEM", Field: "blocks", Reason: reason, Err: ErrMalformed}
	}
	block, rest := pem.Decode(data)
	if block == nil || block.Type != PEMESNIKeys {
		return nil, bad("first block is not " + PEMESNIKeys)
	}
	keys, err := ParseESNIKeys(block.Bytes)
	if err != nil {
		return nil, err
	}
	set := &ESNIKeySet{Keys: keys}
	for _, ks := range keys.Keys {
		if block, rest = pem.Decode(rest); block == nil || block.Type != PEMPrivateKey {
			return nil, bad("missing PRIVATE KEY block for " + GroupName(ks.Group))
		}
		kem, priv, err := ParsePKCS8(block.Bytes)
		if err != nil {
			return nil, err
		}
		g, ok := esniGroups[ks.Group]
		if !ok || g.kem != kem {
			return nil, bad("private key type does not match group " + GroupName(ks.Group))
		}
		k, err := g.curve.NewPrivateKey(priv)
		if err != nil {
			return nil, bad(err.Error())
		}
		set.Private = append(set.Private, k)
	}
	if err := set.Check(); err != nil {
		return nil, err
	}
	return set, nil
}
