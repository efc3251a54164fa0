package adversary

import (
	"github.com/echlab/echlab/ech"
	"golang.org/x/crypto/cryptobyte"
)

// hello is what a censor's DPI reads from the first bytes of a TCP
// connection or a QUIC flow's Initials: the ClientHello's visible SNI and
// its outer encrypted_client_hello extension.
type hello struct {
	ok         bool   // the first bytes held a whole ClientHello
	sni        string // first host_name of server_name; "" without
	ech        bool   // an encrypted_client_hello extension of the outer type
	payloadLen int    // its payload length (0 when it does not parse)
	configID   *uint8 // its config_id (nil when it does not parse)
}

// readHello reads the ClientHello at the start of first (TLS records,
// possibly several). It parses strictly with ech.ParseClientHello; a
// message that fails there (a malformed extension body, say) is walked
// leniently for server_name and encrypted_client_hello, as a middlebox
// would, so that a malformed ClientHello cannot slip past a policy.
func readHello(first []byte) hello {
	if len(first) == 0 || first[0] != 0x16 {
		return hello{}
	}
	msg, _, err := ech.HandshakeFromRecords(first)
	if err != nil {
		return hello{}
	}
	return helloFromMessage(msg)
}

// helloFromMessage reads a ClientHello handshake message (its 4-byte
// header included), as TLS records carry it or QUIC's CRYPTO frames: with
// ech.ParseClientHello, else leniently.
func helloFromMessage(msg []byte) hello {
	if len(msg) < 4 || msg[0] != 1 {
		return hello{}
	}
	if ch, err := ech.ParseClientHello(msg); err == nil {
		return fromClientHello(ch)
	}
	return lenientHello(msg[4:])
}

// fromClientHello takes what the censor looks at from a parsed
// ClientHello.
func fromClientHello(ch *ech.ClientHello) hello {
	h := hello{ok: true, sni: ch.ServerName}
	if ch.ECH != nil && ch.ECH.Type == ech.ECHOuter {
		id := ch.ECH.ConfigID
		h.ech, h.payloadLen, h.configID = true, len(ch.ECH.Payload), &id
	}
	return h
}

// lenientHello walks a ClientHello body's legacy fields and extension
// list, reading server_name and the encrypted_client_hello outer fields
// as far as they parse. It gives ok false only when the extension list
// itself cannot be framed.
func lenientHello(body []byte) hello {
	s := cryptobyte.String(body)
	var skip, exts cryptobyte.String
	if !s.Skip(2+32) || !s.ReadUint8LengthPrefixed(&skip) || !s.ReadUint16LengthPrefixed(&skip) ||
		!s.ReadUint8LengthPrefixed(&skip) || !s.ReadUint16LengthPrefixed(&exts) {
		return hello{}
	}
	h := hello{ok: true}
	for !exts.Empty() {
		var typ uint16
		var data cryptobyte.String
		if !exts.ReadUint16(&typ) || !exts.ReadUint16LengthPrefixed(&data) {
			return hello{}
		}
		switch {
		case typ == ech.ExtServerName && h.sni == "":
			h.sni = lenientSNI(data)
		case typ == ech.ExtEncryptedHello && len(data) > 0 && data[0] == byte(ech.ECHOuter):
			h.ech = true
			h.payloadLen, h.configID = lenientECH(data[1:])
		}
	}
	return h
}

// lenientSNI returns the first host_name of a server_name body, or "".
func lenientSNI(s cryptobyte.String) string {
	var list cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&list) {
		return ""
	}
	for !list.Empty() {
		var typ uint8
		var host cryptobyte.String
		if !list.ReadUint8(&typ) || !list.ReadUint16LengthPrefixed(&host) {
			return ""
		}
		if typ == 0 {
			return string(host)
		}
	}
	return ""
}

// lenientECH reads config_id and the payload length of an outer
// ECHClientHello after its type byte: cipher_suite (4 bytes), config_id,
// enc<0..2^16-1>, payload<1..2^16-1>.
func lenientECH(s cryptobyte.String) (payloadLen int, configID *uint8) {
	var id uint8
	var enc, payload cryptobyte.String
	if !s.Skip(4) || !s.ReadUint8(&id) {
		return 0, nil
	}
	if s.ReadUint16LengthPrefixed(&enc) && s.ReadUint16LengthPrefixed(&payload) {
		payloadLen = len(payload)
	}
	return payloadLen, &id
}
