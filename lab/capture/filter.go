package capture

import (
	"net/netip"
	"strconv"
)

// Role says what a relay fronts. The lab uses "https/<service>" (e.g.
// "https/shared", "https/split", "https/baseline") and "dns/<transport>"
// with transport one of do53, dot, doh, doh3, doq.
type Role string

// RoleDo53 is the role of the relays in front of the resolver's plain DNS
// listeners: on TCP, such a relay frames the stream as length-prefixed
// DNS messages and hands each to Filter.Datagram instead of Filter.Stream.
const RoleDo53 Role = "dns/do53"

// Flow is what a Filter is told about the connection or datagram it sees.
type Flow struct {
	Role    Role
	Proto   string         // "tcp" or "udp"
	Client  netip.AddrPort // the client's address as the relay sees it
	Relay   netip.AddrPort // the relay's listening address (what the client dialed)
	Backend string         // the real server's host:port
}

// Verdict is what a Filter tells the relay to do.
type Verdict int

const (
	// Pass forwards the (possibly rewritten) bytes.
	Pass Verdict = iota
	// Drop forwards nothing more. TCP: the connection is held open
	// silently (a black hole), what the client sends is read and
	// discarded, until the client closes it or the Observer closes. UDP
	// datagram or DNS message: this one is discarded.
	Drop
	// Reset, on TCP, resets the client connection at once (an RST:
	// SO_LINGER 0) and closes the backend side; for a datagram or DNS
	// message it is the same as Drop.
	Reset
	// ResetAfterReply, on TCP only, forwards the client's first bytes,
	// and when the backend's first reply arrives does not forward it but
	// resets the client (RST) instead. For a datagram it is the same as
	// Drop.
	ResetAfterReply
)

// String names the verdict: "pass", "drop", "rst", "rst-after-reply".
func (v Verdict) String() string {
	switch v {
	case Pass:
		return "pass"
	case Drop:
		return "drop"
	case Reset:
		return "rst"
	case ResetAfterReply:
		return "rst-after-reply"
	}
	return "verdict(" + strconv.Itoa(int(v)) + ")"
}

// Filter is an on-path adversary: the relay asks it about each new TCP
// connection and each datagram / DNS message. Its methods are called
// concurrently from the relays' goroutines.
type Filter interface {
	// Stream is called once per TCP connection with the client's first
	// bytes: when they start like a TLS handshake record (0x16), the whole
	// first handshake message (the ClientHello, possibly across several
	// records; capped at 64 KiB), else whatever the first read gave. It is
	// called before the backend is dialed. first holds the bytes as the
	// client sent them: for TLS, the records with their headers (parse
	// them with ech.ParseClientHelloRecords), possibly followed by more
	// bytes the same reads delivered. When the client sends nothing within
	// FirstBytesTimeout, first is empty. A Filter must not keep or modify
	// first. On a relay whose Role is "dns/do53" Stream is not called: see
	// Datagram.
	Stream(f Flow, first []byte) Verdict
	// Datagram is called for every UDP datagram, both ways (toServer
	// true for client → server), and for every DNS message of a "dns/do53"
	// TCP relay (each length-prefixed message, both ways, without the
	// 2-byte prefix; the relay re-adds the prefix for the rewritten
	// message). It returns the bytes to forward (b itself, or a rewritten
	// copy) and Pass, or Drop/Reset to discard (ResetAfterReply counts as
	// Drop here). b is the relay's buffer: it is valid only during the call,
	// and a rewrite must not write into it beyond len(b).
	Datagram(f Flow, toServer bool, b []byte) ([]byte, Verdict)
}
