package client

import (
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"sync"

	"github.com/echlab/echlab/ech"
)

// crypto/tls (Go 1.26) writes the TLS 1.3 traffic secrets to KeyLogWriter,
// with the inner ClientHello random when ECH was accepted (as RFC 9850
// asks), but not the ECH labels. The client adds the ECH_CONFIG line itself,
// keyed by the outer ClientHello random that it reads from the first bytes
// it wrote on the socket.
//
// ECH_SECRET (the HPKE KEM shared secret) cannot be logged for crypto/tls
// connections: crypto/tls seals with crypto/hpke.NewSender, which draws the
// ephemeral key from crypto/internal/rand (tls.Config.Rand is not
// consulted) and keeps the context unexported, so the secret never leaves
// crypto/tls. Over QUIC the ClientHello is inside encrypted Initial packets
// and quic-go drives crypto/tls the same way, so no ECH line is written
// there. Where echlab seals itself with ech.Seal (the lab's padding and
// ech-hide-alpn probes), WriteECHKeyLog writes both labels.

// helloRecorder keeps the first bytes written on a connection: the record
// that carries the (outer) ClientHello.
type helloRecorder struct {
	net.Conn
	mu    sync.Mutex
	first []byte
}

const helloPrefix = 5 + 4 + 2 + 32 // record header, handshake header, version, random

func (r *helloRecorder) Write(b []byte) (int, error) {
	r.mu.Lock()
	if n := helloPrefix - len(r.first); n > 0 {
		r.first = append(r.first, b[:min(n, len(b))]...)
	}
	r.mu.Unlock()
	return r.Conn.Write(b)
}

// clientRandom returns the random of the ClientHello written first, or nil.
func (r *helloRecorder) clientRandom() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return ClientHelloRandom(r.first)
}

// ClientHelloRandom returns the random of a ClientHello at the start of a
// TLS record, or nil when b does not start with one.
func ClientHelloRandom(b []byte) []byte {
	if len(b) < helloPrefix || b[0] != 22 || b[5] != 1 {
		return nil
	}
	return append([]byte(nil), b[11:helloPrefix]...)
}

// writeECHConfigKeyLog writes "ECH_CONFIG <outer random> <ECHConfig>" when
// ECH was offered and a key log is set. The offered list holds one config
// (see SelectConfig), so the config is the list without its length prefix.
func (f *fetcher) writeECHConfigKeyLog(r *helloRecorder, conf *tls.Config) {
	list := conf.EncryptedClientHelloConfigList
	if f.opts.KeyLog == nil || len(list) < 3 {
		return
	}
	random := r.clientRandom()
	if random == nil {
		return
	}
	line := fmt.Sprintf("ECH_CONFIG %s %s\n", hex.EncodeToString(random), hex.EncodeToString(list[2:]))
	f.opts.KeyLog.Write([]byte(line))
}

// WriteECHKeyLog writes the RFC 9850 ECH lines of a ClientHelloOuter that
// ech.Seal made for cfg: "ECH_SECRET <outer random> <HPKE shared secret>"
// and "ECH_CONFIG <outer random> <ECHConfig>". With them, echlab compare
// --keylog opens the payload without the server's key.
func WriteECHKeyLog(w io.Writer, s *ech.Sealed, cfg *ech.Config) error {
	if len(s.SharedSecret) == 0 || s.Outer == nil || len(s.Outer.Random) != 32 {
		return fmt.Errorf("client: no ECH secret to log")
	}
	r := hex.EncodeToString(s.Outer.Random)
	_, err := fmt.Fprintf(w, "ECH_SECRET %s %s\nECH_CONFIG %s %s\n", r, hex.EncodeToString(s.SharedSecret), r, hex.EncodeToString(cfg.Raw))
	return err
}
