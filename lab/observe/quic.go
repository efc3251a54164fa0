package observe

import (
	"github.com/echlab/echlab/internal/quicinitial"
)

// QUIC versions whose Initial packets Compare decrypts.
const (
	QUICv1 uint32 = quicinitial.V1 // RFC 9000
	QUICv2 uint32 = quicinitial.V2 // RFC 9369
)

// ErrQUIC reports a QUIC packet the observer could not read.
var ErrQUIC = quicinitial.ErrPacket

// The Initial packet machinery (secrets, header protection, CRYPTO frames)
// is internal/quicinitial's, shared with the client, which reads its own
// Initials with it (client.Options.OnClientHello).
type (
	longHeader  = quicinitial.Header
	initialKeys = quicinitial.Keys
	cryptoChunk = quicinitial.Chunk
)

// parseLongHeader reads a long header at the start of b.
func parseLongHeader(b []byte) (*longHeader, error) { return quicinitial.ParseHeader(b) }

// assembleCrypto joins CRYPTO chunks from offset 0 up to the first hole,
// up to maxStream bytes.
func assembleCrypto(chunks []cryptoChunk) []byte { return quicinitial.Assemble(chunks, maxStream) }

// quicDir is one direction of a QUIC connection's Initial space.
type quicDir struct {
	keys    *initialKeys
	largest int64
	crypto  []cryptoChunk
	first   bool // an Initial was decrypted
}

// quicConn follows the Initial packets of one QUIC connection as seen on
// the wire: the client's first Initial fixes the keys; a Retry resets them.
type quicConn struct {
	version        uint32
	client, server quicDir
	retry          bool
	initials       int
	warnings       []string
}

// addDatagram reads the coalesced packets of one UDP datagram.
func (q *quicConn) addDatagram(fromClient bool, b []byte) {
	for len(b) > 0 && b[0]&0x80 != 0 {
		h, err := parseLongHeader(b)
		if err != nil {
			q.warn(err.Error())
			return
		}
		pkt := b[:h.End]
		b = b[h.End:]
		switch {
		case h.Retry && !fromClient:
			q.retry = true
			q.client.keys, q.server.keys = nil, nil
		case h.Initial:
			q.addInitial(fromClient, h, pkt)
		}
	}
}

func (q *quicConn) addInitial(fromClient bool, h *longHeader, pkt []byte) {
	if q.client.keys == nil {
		if !fromClient {
			q.warn("quic: server Initial before any client Initial; cannot derive keys")
			return
		}
		cs, ss := quicinitial.Secrets(h.Version, h.DCID)
		q.version = h.Version
		q.client = quicDir{keys: quicinitial.NewKeys(h.Version, cs), largest: -1}
		q.server = quicDir{keys: quicinitial.NewKeys(h.Version, ss), largest: -1}
	}
	d := &q.server
	if fromClient {
		d = &q.client
	}
	pn, plain, err := d.keys.Open(pkt, h, d.largest)
	if err != nil {
		q.warn(err.Error())
		return
	}
	q.initials++
	d.first = true
	d.largest = max(d.largest, pn)
	chunks, err := quicinitial.ParseFrames(plain)
	for _, c := range chunks {
		// Keep the CRYPTO bytes, not the decrypted packet (mostly PADDING).
		d.crypto = append(d.crypto, cryptoChunk{Off: c.Off, Data: append([]byte(nil), c.Data...)})
	}
	if err != nil {
		q.warn(err.Error())
	}
}

func (q *quicConn) warn(s string) {
	if len(q.warnings) < 8 {
		q.warnings = append(q.warnings, s)
	}
}
