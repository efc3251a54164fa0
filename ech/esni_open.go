package ech

import (
	"bytes"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// ESNIOpened is what the holder of an ESNI private key learns from a
// ClientHello's encrypted_server_name extension.
type ESNIOpened struct {
	ServerName     string             // first host_name of the ServerNameList
	ServerNameList []byte             // PaddedServerNameList.sni as sent
	Nonce          [ESNINonceLen]byte // to echo in EncryptedExtensions
	Ext            *ClientEncryptedSNI
	Set            *ESNIKeySet // the key set whose record_digest matched
}

// DecryptESNI decrypts the encrypted_server_name extension of ch with set
// and returns the true server name.
func DecryptESNI(set *ESNIKeySet, ch *ClientHello) (serverName string, err error) {
	o, err := OpenESNI([]*ESNIKeySet{set}, ch)
	if err != nil {
		return "", err
	}
	return o.ServerName, nil
}

// OpenESNI finds the encrypted_server_name extension of ch, picks the key
// set whose record_digest matches (ErrESNIDigest if none), and decrypts
// it with the ClientHello's key_share extension body as AAD and its random
// in ESNIContents. Errors: a FieldError wrapping ErrMalformed (bad
// extension), ErrESNIDigest, ErrUnsupported (suite), ErrInvalid (group
// not in the keys, length inconsistent with padded_length), ErrDecrypt
// (authentication failed), ErrESNIPadding.
func OpenESNI(sets []*ESNIKeySet, ch *ClientHello) (*ESNIOpened, error) {
	e, ok := ch.Extension(ExtEncryptedServerName)
	if !ok {
		return nil, invalid("ClientHello", "encrypted_server_name", "extension absent")
	}
	ext, err := ParseClientEncryptedSNI(e.Data)
	if err != nil {
		return nil, err
	}
	ksExt, ok := ch.Extension(ExtKeyShare)
	if !ok {
		return nil, invalid("ClientHello", "key_share", "absent: it is the AAD of encrypted_sni")
	}
	return OpenClientEncryptedSNI(sets, ext, ch.Random, ksExt.Data)
}

// OpenClientEncryptedSNI is OpenESNI on the parts: the parsed extension,
// ClientHello.random and the key_share extension body.
func OpenClientEncryptedSNI(sets []*ESNIKeySet, ext *ClientEncryptedSNI, clientRandom, keyShareExt []byte) (*ESNIOpened, error) {
	cs, err := esniAEAD(ext.Suite)
	if err != nil {
		return nil, err
	}
	set, err := matchDigest(sets, ext)
	if err != nil {
		return nil, err
	}
	priv := set.PrivateKey(ext.KeyShare.Group)
	if priv == nil {
		return nil, invalid("ClientEncryptedSNI", "key_share",
			fmt.Sprintf("group %s is not in the ESNIKeys", GroupName(ext.KeyShare.Group)))
	}
	want := ESNINonceLen + int(set.Keys.PaddedLength) + 16
	if len(ext.EncryptedSNI) != want {
		return nil, invalid("ClientEncryptedSNI", "encrypted_sni",
			fmt.Sprintf("%d bytes, padded_length %d implies %d", len(ext.EncryptedSNI), set.Keys.PaddedLength, want))
	}
	z, err := esniECDH(priv, ext.KeyShare)
	if err != nil {
		return nil, err
	}
	aead, iv, err := esniKeyIV(cs, z, ext, clientRandom)
	if err != nil {
		return nil, err
	}
	inner, err := aead.Open(nil, iv, ext.EncryptedSNI, keyShareExt)
	if err != nil {
		return nil, &FieldError{Struct: "ClientEncryptedSNI", Field: "encrypted_sni",
			Reason: "AEAD authentication failed", Err: ErrDecrypt}
	}
	o, err := parseESNIInner(inner, int(set.Keys.PaddedLength))
	if err != nil {
		return nil, err
	}
	o.Ext, o.Set = ext, set
	return o, nil
}

func matchDigest(sets []*ESNIKeySet, ext *ClientEncryptedSNI) (*ESNIKeySet, error) {
	for _, s := range sets {
		if s == nil || s.Keys == nil {
			continue
		}
		d, err := s.Keys.RecordDigest(ext.Suite)
		if err == nil && ctEqual(d, ext.RecordDigest) {
			return s, nil
		}
	}
	return nil, &FieldError{Struct: "ClientEncryptedSNI", Field: "record_digest",
		Reason: fmt.Sprintf("%x matches none of %d ESNIKeys", ext.RecordDigest, len(sets)), Err: ErrESNIDigest}
}

// parseESNIInner checks ClientESNIInner: nonce, a ServerNameList, then
// zeros up to padded_length.
func parseESNIInner(inner []byte, paddedLen int) (*ESNIOpened, error) {
	const st = "ClientESNIInner"
	o := &ESNIOpened{}
	if len(inner) != ESNINonceLen+paddedLen {
		return nil, &FieldError{Struct: st, Field: "realSNI",
			Reason: fmt.Sprintf("%d bytes, want %d", len(inner)-ESNINonceLen, paddedLen), Err: ErrESNIPadding}
	}
	copy(o.Nonce[:], inner)
	s := cryptobyte.String(inner[ESNINonceLen:])
	var list cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&list) {
		return nil, malformed(st, "sni")
	}
	o.ServerNameList = inner[ESNINonceLen : len(inner)-len(s)]
	name, ok := parseServerName(cryptobyte.String(o.ServerNameList))
	if !ok || name == "" {
		return nil, malformed(st, "sni")
	}
	o.ServerName = name
	if !bytes.Equal(s, make([]byte, len(s))) {
		return nil, &FieldError{Struct: st, Field: "zeros", Reason: "padding is not all zeros", Err: ErrESNIPadding}
	}
	return o, nil
}

// ServerESNI response types (draft-03 §5).
const (
	ESNIAccept       uint8 = 0
	ESNIRetryRequest uint8 = 1
)

// ServerEncryptedSNI is the encrypted_server_name extension a server puts
// in EncryptedExtensions.
type ServerEncryptedSNI struct {
	ResponseType uint8
	Nonce        [ESNINonceLen]byte // esni_accept
	RetryKeys    [][]byte           // esni_retry_request: raw ESNIKeys structures
}

// Marshal encodes the extension body.
func (s *ServerEncryptedSNI) Marshal() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint8(s.ResponseType)
	switch s.ResponseType {
	case ESNIAccept:
		b.AddBytes(s.Nonce[:])
	case ESNIRetryRequest:
		if len(s.RetryKeys) == 0 {
			return nil, invalid("ServerEncryptedSNI", "retry_keys", "empty")
		}
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			for _, k := range s.RetryKeys {
				b.AddBytes(k)
			}
		})
	default:
		return nil, invalid("ServerEncryptedSNI", "response_type", fmt.Sprintf("%d", s.ResponseType))
	}
	return b.Bytes()
}

// ParseServerEncryptedSNI parses the server's extension body. Retry keys
// must be a sequence of well-formed ESNIKeys of known versions.
func ParseServerEncryptedSNI(b []byte) (*ServerEncryptedSNI, error) {
	const st = "ServerEncryptedSNI"
	s := cryptobyte.String(b)
	out := &ServerEncryptedSNI{}
	if !s.ReadUint8(&out.ResponseType) {
		return nil, malformed(st, "response_type")
	}
	switch out.ResponseType {
	case ESNIAccept:
		if !s.CopyBytes(out.Nonce[:]) || !s.Empty() {
			return nil, malformed(st, "nonce")
		}
	case ESNIRetryRequest:
		var list cryptobyte.String
		if !s.ReadUint16LengthPrefixed(&list) || list.Empty() || !s.Empty() {
			return nil, malformed(st, "retry_keys")
		}
		keys, err := ParseESNIKeysList(list)
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			out.RetryKeys = append(out.RetryKeys, k.Raw)
		}
	default:
		return nil, invalid(st, "response_type", fmt.Sprintf("%d is neither esni_accept nor esni_retry_request", out.ResponseType))
	}
	return out, nil
}
