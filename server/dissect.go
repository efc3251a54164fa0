package server

import (
	"bytes"

	"github.com/echlab/echlab/ech"
)

// helloFacts is what the server logs from the first ClientHello a client
// sent: the plain SNI and the ECH extension's config id and suite.
type helloFacts struct {
	sni      string
	hasECH   bool // an outer encrypted_client_hello extension was present
	configID uint8
	suite    string // "KDF/AEAD"
	innerECH bool   // an inner encrypted_client_hello came in the clear (from a split front, or a client)
	random   []byte // the ClientHello's random, which a front's verdict is bound to
}

// dissect parses the first ClientHello in the recorded client bytes with
// ech.ParseClientHelloRecords. Bytes that do not parse give zero facts and
// false: the handshake itself has already judged them. The facts keep
// no reference to raw.
func dissect(raw []byte) (helloFacts, bool) {
	ch, err := ech.ParseClientHelloRecords(raw)
	if err != nil {
		return helloFacts{}, false
	}
	return factsOf(ch), true
}

// factsOf returns the facts of a parsed ClientHello; they keep no
// reference to it.
func factsOf(ch *ech.ClientHello) helloFacts {
	f := helloFacts{sni: ch.ServerName, random: bytes.Clone(ch.Random)}
	if ch.ECH != nil && ch.ECH.Type == ech.ECHOuter {
		f.hasECH = true
		f.configID = ch.ECH.ConfigID
		f.suite = suiteName(ch.ECH.CipherSuite)
	}
	f.innerECH = ch.ECH != nil && ch.ECH.Type == ech.ECHInner
	return f
}

// suiteName formats an HPKE symmetric suite as "HKDF-SHA256/AES-128-GCM".
func suiteName(cs ech.CipherSuite) string {
	return ech.KDFName(cs.KDF) + "/" + ech.AEADName(cs.AEAD)
}
