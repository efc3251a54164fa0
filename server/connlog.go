package server

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"io"
	"sync"
	"time"
)

// ECH status values of ConnRecord.ECH.
const (
	// ECHAccepted: the server decrypted the ClientHelloInner and used it.
	ECHAccepted = "accepted"
	// ECHRejected: the ECH extension named one of the server's config ids
	// (or a stale one it still knows) but could not be used; retry configs
	// were sent when the key set has any. A failed QUIC handshake is
	// "rejected" only when the server did send retry configs.
	ECHRejected = "rejected"
	// ECHGrease: the ECH extension named a config id the server does not
	// hold, as GREASE ECH does.
	ECHGrease = "grease"
	// ECHInnerInClear: the ClientHello carried an encrypted_client_hello
	// extension of type inner, so its server_name travelled in the clear,
	// and neither this server nor a split front vouching for it (a PROXY v2
	// header verified with Config.FrontSecret) opened a ClientHelloOuter.
	// A split front sends this for a ClientHelloInner a client sent it
	// directly, with an illegal_parameter alert (RFC 9849 §7).
	ECHInnerInClear = "inner-in-clear"
	// ECHNone: the ClientHello carried no ECH extension.
	ECHNone = "none"
	// ECHUnknown: the ClientHello carried an ECH extension but the server
	// cannot tell what became of it: a QUIC handshake that failed before
	// the server either swapped in the ClientHelloInner or sent retry
	// configs (quic-go hands over no ConnectionState for it).
	ECHUnknown = "unknown"
)

// Transports of ConnRecord.Transport.
const (
	TransportTCP  = "tcp"
	TransportQUIC = "quic"
)

// ConnRecord is what the server saw on one connection. It is written as one
// JSON line per connection (the lab and the notebooks read these files) and
// served by /api/conn. Field names are the JSON keys; the record schema is
// versioned by Schema.
type ConnRecord struct {
	Schema     int       `json:"schema"`      // RecordSchema
	Time       time.Time `json:"time"`        // when the connection was accepted
	Mode       string    `json:"mode"`        // "shared", "baseline" or "split"
	Transport  string    `json:"transport"`   // "tcp" or "quic"
	ClientAddr string    `json:"client_addr"` // remote ip:port
	OuterSNI   string    `json:"outer_sni"`   // server_name of the ClientHelloOuter (or the only ClientHello)
	InnerSNI   string    `json:"inner_sni"`   // server_name of the ClientHelloInner; "" unless ECH was accepted
	ECH        string    `json:"ech"`         // ECHAccepted, ECHRejected, ECHGrease, ECHInnerInClear, ECHNone or ECHUnknown
	// ConfigID is the ECH config id the client named; null without ECH
	// (and over QUIC when the ClientHello could not be read from the
	// client's Initials).
	ConfigID *uint8 `json:"config_id"`
	// HPKESuite is the client's ECH cipher suite as "KDF/AEAD" names
	// ("HKDF-SHA256/AES-128-GCM"); "" when ConfigID is null.
	HPKESuite string `json:"hpke_suite,omitempty"`
	// RetryConfigs reports that the server answered an ECH it did not
	// accept with retry configs.
	RetryConfigs bool    `json:"retry_configs"`
	HRR          bool    `json:"hrr"`                   // the server sent a HelloRetryRequest
	HandshakeMS  float64 `json:"handshake_ms"`          // first byte to handshake done, milliseconds
	ALPN         string  `json:"alpn"`                  // negotiated application protocol
	Version      string  `json:"version"`               // "TLSv1.3"
	Cipher       string  `json:"cipher"`                // "TLS_AES_128_GCM_SHA256"
	Group        string  `json:"group"`                 // key exchange group, "X25519MLKEM768"
	ClientCert   string  `json:"client_cert,omitempty"` // subject CN of a verified client certificate
	Backend      string  `json:"backend,omitempty"`     // split mode: the address the connection was relayed to
	Route        string  `json:"route,omitempty"`       // split mode: "ech", "passthrough" or "public"
	Error        string  `json:"error,omitempty"`       // why the handshake or relay failed
	// Front says whether a split front's PROXY v2 header came with the
	// connection: FrontVerified or FrontInvalid; "" without one (or
	// without Config.FrontSecret).
	Front string `json:"front,omitempty"`
	// FrontAddr is the TCP peer (the split front) when ClientAddr came
	// from a verified front header.
	FrontAddr string `json:"front_addr,omitempty"`
}

// RecordSchema is the version of the ConnRecord JSON layout.
const RecordSchema = 1

// fill copies what the TLS connection state says into r.
func (r *ConnRecord) fill(cs tls.ConnectionState) {
	r.ALPN = cs.NegotiatedProtocol
	r.Version = versionName(cs.Version)
	r.Cipher = cipherName(cs.CipherSuite)
	if cs.CurveID != 0 {
		r.Group = cs.CurveID.String()
	}
	r.HRR = cs.HelloRetryRequest
	if len(cs.PeerCertificates) > 0 {
		r.ClientCert = cs.PeerCertificates[0].Subject.CommonName
	}
	if cs.ECHAccepted {
		r.ECH = ECHAccepted
		r.InnerSNI = cs.ServerName
	}
}

// cipherNames maps every cipher suite crypto/tls knows to its name, built
// once: tls.CipherSuiteName builds both suite lists on every call.
var cipherNames = sync.OnceValue(func() map[uint16]string {
	m := map[uint16]string{}
	for _, c := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		if _, ok := m[c.ID]; !ok {
			m[c.ID] = c.Name
		}
	}
	return m
})

// cipherName is tls.CipherSuiteName without its allocations.
func cipherName(id uint16) string {
	if n, ok := cipherNames()[id]; ok {
		return n
	}
	return tls.CipherSuiteName(id)
}

func versionName(v uint16) string {
	switch v {
	case tls.VersionTLS13:
		return "TLSv1.3"
	case tls.VersionTLS12:
		return "TLSv1.2"
	case 0:
		return ""
	}
	return tls.VersionName(v)
}

// recordLog writes ConnRecords as JSON lines to an io.Writer, one Write per
// record, serialised so lines never interleave.
type recordLog struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *recordLog) write(r *ConnRecord) {
	if l == nil || l.w == nil {
		return
	}
	buf := lineBufs.Get().(*bytes.Buffer)
	defer lineBufs.Put(buf)
	buf.Reset()
	// Encode writes what json.Marshal returns, and the newline.
	if err := json.NewEncoder(buf).Encode(r); err != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.w.Write(buf.Bytes()) //nolint:errcheck // the log is best effort and must not fail a connection
}

// lineBufs holds the buffers records are encoded into.
var lineBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}
