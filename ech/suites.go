package ech

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// HPKE algorithm identifiers (RFC 9180 §7 and the IANA HPKE registry) for
// every algorithm circl implements.
const (
	KEMP256HKDFSHA256     uint16 = 0x0010 // DHKEM(P-256, HKDF-SHA256)
	KEMP384HKDFSHA384     uint16 = 0x0011 // DHKEM(P-384, HKDF-SHA384)
	KEMP521HKDFSHA512     uint16 = 0x0012 // DHKEM(P-521, HKDF-SHA512)
	KEMX25519HKDFSHA256   uint16 = 0x0020 // DHKEM(X25519, HKDF-SHA256)
	KEMX448HKDFSHA512     uint16 = 0x0021 // DHKEM(X448, HKDF-SHA512)
	KEMX25519Kyber768Dft0 uint16 = 0x0030 // X25519Kyber768Draft00 (obsolete hybrid)
	KEMXWing              uint16 = 0x647a // X-Wing, MLKEM768-X25519

	KDFHKDFSHA256 uint16 = 0x0001
	KDFHKDFSHA384 uint16 = 0x0002
	KDFHKDFSHA512 uint16 = 0x0003

	AEADAES128GCM        uint16 = 0x0001
	AEADAES256GCM        uint16 = 0x0002
	AEADChaCha20Poly1305 uint16 = 0x0003
)

// algorithm is one row of a names table: the short flag name, the
// registry name printed by inspect, and the id.
type algorithm struct {
	flag, name string
	id         uint16
}

var kems = []algorithm{
	{"p256", "DHKEM(P-256, HKDF-SHA256)", KEMP256HKDFSHA256},
	{"p384", "DHKEM(P-384, HKDF-SHA384)", KEMP384HKDFSHA384},
	{"p521", "DHKEM(P-521, HKDF-SHA512)", KEMP521HKDFSHA512},
	{"x25519", "DHKEM(X25519, HKDF-SHA256)", KEMX25519HKDFSHA256},
	{"x448", "DHKEM(X448, HKDF-SHA512)", KEMX448HKDFSHA512},
	{"x25519kyber768", "X25519Kyber768Draft00", KEMX25519Kyber768Dft0},
	{"xwing", "X-Wing (MLKEM768-X25519)", KEMXWing},
}

var kdfs = []algorithm{
	{"hkdf-sha256", "HKDF-SHA256", KDFHKDFSHA256},
	{"hkdf-sha384", "HKDF-SHA384", KDFHKDFSHA384},
	{"hkdf-sha512", "HKDF-SHA512", KDFHKDFSHA512},
}

var aeads = []algorithm{
	{"aes128gcm", "AES-128-GCM", AEADAES128GCM},
	{"aes256gcm", "AES-256-GCM", AEADAES256GCM},
	{"chacha20poly1305", "ChaCha20-Poly1305", AEADChaCha20Poly1305},
}

// tlsKEMs are the KEMs Go's crypto/tls accepts in EncryptedClientHelloKeys
// and that circl also implements (crypto/hpke.NewKEM in Go 1.26).
var tlsKEMs = map[uint16]bool{
	KEMP256HKDFSHA256: true, KEMP384HKDFSHA384: true, KEMP521HKDFSHA512: true,
	KEMX25519HKDFSHA256: true, KEMXWing: true,
}

// KEMs returns the ids of every KEM GenerateKey supports, in table order.
func KEMs() []uint16 { return ids(kems) }

// KDFs returns the ids of every supported KDF.
func KDFs() []uint16 { return ids(kdfs) }

// AEADs returns the ids of every supported AEAD.
func AEADs() []uint16 { return ids(aeads) }

// TLSSupportsKEM reports whether Go's crypto/tls can use keys of this KEM.
func TLSSupportsKEM(id uint16) bool { return tlsKEMs[id] }

// KEMName returns the registry name of a KEM id, or "unknown".
func KEMName(id uint16) string { return name(kems, id) }

// KDFName returns the registry name of a KDF id, or "unknown".
func KDFName(id uint16) string { return name(kdfs, id) }

// AEADName returns the registry name of an AEAD id, or "unknown".
func AEADName(id uint16) string { return name(aeads, id) }

// KEMFlagName returns the short name ParseKEM accepts for id, or "".
func KEMFlagName(id uint16) string {
	for _, a := range kems {
		if a.id == id {
			return a.flag
		}
	}
	return ""
}

// ParseKEM maps a short name ("x25519", "p256", "p384", "p521", "x448",
// "x25519kyber768", "xwing") or a number ("0x20", "32") to a KEM id.
func ParseKEM(s string) (uint16, error) { return parse(kems, "kem_id", s) }

// ParseKDF maps "hkdf-sha256", "hkdf-sha384", "hkdf-sha512" (also without
// the "hkdf-" prefix) or a number to a KDF id.
func ParseKDF(s string) (uint16, error) { return parse(kdfs, "kdf_id", s) }

// ParseAEAD maps "aes128gcm", "aes256gcm", "chacha20poly1305" or a number to
// an AEAD id.
func ParseAEAD(s string) (uint16, error) { return parse(aeads, "aead_id", s) }

// ParseCipherSuites takes comma-separated KDF and AEAD lists and returns
// every KDF×AEAD pair, in the order given (KDF-major). Empty lists mean
// HKDF-SHA256 and AES-128-GCM.
func ParseCipherSuites(kdfList, aeadList string) ([]CipherSuite, error) {
	kdfIDs, err := parseList(kdfList, "hkdf-sha256", ParseKDF)
	if err != nil {
		return nil, err
	}
	aeadIDs, err := parseList(aeadList, "aes128gcm", ParseAEAD)
	if err != nil {
		return nil, err
	}
	var out []CipherSuite
	for _, k := range kdfIDs {
		for _, a := range aeadIDs {
			out = append(out, CipherSuite{KDF: k, AEAD: a})
		}
	}
	return out, nil
}

// String prints the suite as "HKDF-SHA256/AES-128-GCM".
func (cs CipherSuite) String() string {
	return fmt.Sprintf("%s/%s", KDFName(cs.KDF), AEADName(cs.AEAD))
}

// KEMFlagNames lists the short KEM names, for flag help texts.
func KEMFlagNames() string { return flagNames(kems) }

// KDFFlagNames lists the short KDF names, for flag help texts.
func KDFFlagNames() string { return flagNames(kdfs) }

// AEADFlagNames lists the short AEAD names, for flag help texts.
func AEADFlagNames() string { return flagNames(aeads) }

func parseList(list, def string, one func(string) (uint16, error)) ([]uint16, error) {
	if strings.TrimSpace(list) == "" {
		list = def
	}
	var out []uint16
	seen := map[uint16]bool{}
	for _, f := range strings.Split(list, ",") {
		id, err := one(strings.TrimSpace(f))
		if err != nil {
			return nil, err
		}
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out, nil
}

func parse(table []algorithm, field, s string) (uint16, error) {
	key := strings.ToLower(strings.TrimSpace(s))
	for _, a := range table {
		short := strings.TrimPrefix(a.flag, "hkdf-") // "sha256" for "hkdf-sha256"
		if key == a.flag || key == short || key == strings.ToLower(a.name) {
			return a.id, nil
		}
	}
	if n, err := strconv.ParseUint(key, 0, 16); err == nil {
		for _, a := range table {
			if uint64(a.id) == n {
				return a.id, nil
			}
		}
	}
	return 0, unsupported("HPKE", field, fmt.Sprintf("unknown algorithm %q (known: %s)", s, flagNames(table)))
}

func name(table []algorithm, id uint16) string {
	for _, a := range table {
		if a.id == id {
			return a.name
		}
	}
	return "unknown"
}

func ids(table []algorithm) []uint16 {
	out := make([]uint16, len(table))
	for i, a := range table {
		out[i] = a.id
	}
	return out
}

func flagNames(table []algorithm) string {
	names := make([]string, len(table))
	for i, a := range table {
		names[i] = a.flag
	}
	sort.Strings(names)
	return strings.Join(names, "|")
}
