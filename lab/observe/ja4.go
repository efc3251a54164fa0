package observe

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"

	"github.com/echlab/echlab/ech"
)

// clientHelloJA4 computes the FoxIO JA4 fingerprint of a ClientHello, e.g.
// "t13d1516h2_8daaf6152771_e5627efa2ab1". quic selects the "q" protocol
// prefix instead of "t". GREASE values are ignored throughout.
func clientHelloJA4(ch *ech.ClientHello, quic bool) string {
	var exts []uint16
	for _, t := range ch.ExtensionTypes() {
		if !ech.IsGREASE(t) {
			exts = append(exts, t)
		}
	}
	var alpn string
	if len(ch.ALPN) > 0 {
		alpn = ch.ALPN[0]
	}
	_, hasSNI := ch.Extension(ech.ExtServerName)
	return ja4(quic, ja4Version(ch), hasSNI, noGREASE(ch.CipherSuites), exts, alpn, noGREASE(ch.SignatureAlgorithms))
}

// ja4 assembles the fingerprint from the ClientHello's parts (GREASE
// already removed; exts in wire order, including SNI and ALPN).
func ja4(quic bool, version string, sni bool, ciphers, exts []uint16, alpn string, sigalgs []uint16) string {
	proto, d := "t", "i"
	if quic {
		proto = "q"
	}
	if sni {
		d = "d"
	}
	a := fmt.Sprintf("%s%s%s%02d%02d%s", proto, version, d, min(len(ciphers), 99), min(len(exts), 99), ja4ALPN(alpn))
	rest := make([]uint16, 0, len(exts))
	for _, e := range exts {
		if e != ech.ExtServerName && e != ech.ExtALPN {
			rest = append(rest, e)
		}
	}
	slices.Sort(rest)
	var buf [512]byte
	c := appendHexList(buf[:0], rest)
	if len(sigalgs) > 0 {
		c = appendHexList(append(c, '_'), sigalgs)
	}
	cHash := ja4Hash(c)
	if len(rest) == 0 {
		cHash = "000000000000"
	}
	return a + "_" + ja4Hash(appendHexList(c[:0], sorted(ciphers))) + "_" + cHash
}

// ja4Version is the highest non-GREASE supported_versions value, or the
// legacy version when the extension is absent.
func ja4Version(ch *ech.ClientHello) string {
	v := ch.Version
	if sv := noGREASE(ch.SupportedVersions); len(sv) > 0 {
		v = 0
		for _, x := range sv {
			v = max(v, x)
		}
	}
	switch v {
	case 0x0304:
		return "13"
	case 0x0303:
		return "12"
	case 0x0302:
		return "11"
	case 0x0301:
		return "10"
	case 0x0300:
		return "s3"
	case 0x0002:
		return "s2"
	}
	return "00"
}

// ja4ALPN is the first and last character of the first ALPN value, or of
// its hex form when either is not alphanumeric; "00" without ALPN.
func ja4ALPN(a string) string {
	if a == "" {
		return "00"
	}
	if isAlnum(a[0]) && isAlnum(a[len(a)-1]) {
		return string([]byte{a[0], a[len(a)-1]})
	}
	h := hex.EncodeToString([]byte(a))
	return string([]byte{h[0], h[len(h)-1]})
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// ja4Hash is the first 12 hex characters of SHA-256, or twelve zeros for
// an empty input.
func ja4Hash(s []byte) string {
	if len(s) == 0 {
		return "000000000000"
	}
	sum := sha256.Sum256(s)
	return hex.EncodeToString(sum[:6])
}

// appendHexList appends the JA4 form of a list: four hex digits each,
// comma-separated.
func appendHexList(b []byte, v []uint16) []byte {
	const digits = "0123456789abcdef"
	for i, x := range v {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, digits[x>>12], digits[x>>8&0xf], digits[x>>4&0xf], digits[x&0xf])
	}
	return b
}

func sorted(v []uint16) []uint16 {
	out := slices.Clone(v)
	slices.Sort(out)
	return out
}

func noGREASE(v []uint16) []uint16 {
	var out []uint16
	for _, x := range v {
		if !ech.IsGREASE(x) {
			out = append(out, x)
		}
	}
	return out
}
